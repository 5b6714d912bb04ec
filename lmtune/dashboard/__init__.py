"""A live, read-only web page over a study storage: ``lmtune dashboard --storage URL``.

It lists the studies, then a study's plots and trials, then one trial's parameters, curve and failure reason,
refreshing as trials finish. It binds to 127.0.0.1 unless told otherwise and never writes to the storage.
"""

from __future__ import annotations

from lmtune.dashboard.server import DashboardData, make_server, serve

__all__ = ["DashboardData", "make_server", "serve"]
