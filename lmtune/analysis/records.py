"""Read-only access to a study's trials for analysis: from a live :class:`Study`, a snapshot, or a storage.

Analysis never writes trials, so everything here works on :class:`~lmtune.history.TrialHistory` snapshots.
Reading through a storage directly (not :func:`lmtune.load_study`) keeps the dashboard and the report free of
side effects: opening a ``Study`` fails stale trials and starts a heartbeat thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.space import Distribution, SearchSpace
from lmtune.storage import Storage, get_storage

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["analysis_space", "as_history", "metric_name", "read_history"]


def metric_name(attrs: dict[str, Any]) -> str:
    """The task's metric (e.g. ``accuracy``) from a study's attributes (its provenance), or ``value`` for a study
    with an objective."""
    provenance = attrs.get("provenance") or {}
    return str((provenance.get("task") or {}).get("metric") or "value")


def as_history(source: Study | TrialHistory) -> TrialHistory:
    """A snapshot of ``source``'s trials."""
    if isinstance(source, TrialHistory):
        return source
    history = getattr(source, "history", None)
    if callable(history):
        return history()
    raise ConfigError(f"expected a Study or a TrialHistory, but got {type(source).__name__}")


def read_history(study_name: str, storage: str | Storage) -> TrialHistory:
    """All trials of ``study_name`` read straight from ``storage`` (no write, no background thread)."""
    store = get_storage(storage, read_only=True)
    info = store.get_study(study_name)
    space = SearchSpace.from_json(info.space) if info.space else None
    return TrialHistory(tuple(store.get_trials(info.study_id)), info.direction, space)


def analysis_space(history: TrialHistory) -> SearchSpace:
    """The declared space, or for define-by-run studies every parameter seen, with its first distribution.

    A parameter a trial lacks counts as inactive in that trial, which is how conditional parameters of
    define-by-run objectives show up.
    """
    if history.space is not None:
        return history.space
    seen: dict[str, Distribution] = {}
    for record in history:
        for name, dist in record.distributions.items():
            seen.setdefault(name, dist)
    return SearchSpace(seen)


def param_label(value: Any) -> str:
    """A short text form of a parameter value for axes and tables."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
