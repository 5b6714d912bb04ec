"""Headless Chromium for browser tests and benchmarks: where it is and how to start it on a machine with no
outside network (Debian's package, driven by Playwright through ``executable_path``)."""

from __future__ import annotations

import os
import shutil

__all__ = ["CHROMIUM", "LAUNCH_ARGS"]

#: The Chromium binary: ``$CHROMIUM``, else ``chromium`` on the PATH, else Debian's location.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

#: Headless, no sandbox (tests run as root), and none of the background connections a closed network refuses.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
