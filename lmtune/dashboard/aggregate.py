"""What the dashboard page draws, computed on the server and cut to what a screen can show.

A 10,000-trial study would otherwise send every trial and every learning curve to the browser on each load. Here
the server sends one page of the trial table, the state counts and the best trial; the history plot's points
decimated to at most ``max_points`` (the lowest and highest value in each bin of trial numbers, so the envelope and
the outliers stay visible) with the best-so-far line reduced to its steps; and at most ``max_curves`` learning
curves (the best trials', the latest ones and an even sample of the rest).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from lmtune.history import TrialHistory
from lmtune.trial import TrialRecord, TrialState

__all__ = ["curve_series", "history_series", "study_view", "trial_row"]


def trial_row(record: TrialRecord) -> dict[str, Any]:
    """The fields of one row of the trial table (the curve and attributes come with the trial's own endpoint)."""
    return {
        "number": record.number,
        "state": record.state.value,
        "value": record.value,
        "params": dict(record.params),
        "worker_id": record.worker_id,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "last_step": record.last_step,
    }


def study_view(history: TrialHistory, page: int, page_rows: int) -> dict[str, Any]:
    """State counts, the best trial and one page of the trial table (newest first), with the page count."""
    records = history.records
    pages = max(1, math.ceil(len(records) / page_rows))
    page = min(max(page, 0), pages - 1)
    end = len(records) - page * page_rows
    rows = [trial_row(r) for r in reversed(records[max(0, end - page_rows) : end])]
    counts = Counter(r.state.value for r in records)
    best = history.best()
    names: list[str] = list(history.space) if history.space is not None else []
    for row in rows:
        names.extend(name for name in row["params"] if name not in names)
    return {
        "direction": history.direction,
        "n_trials": len(records),
        "states": {state.value: counts[state.value] for state in TrialState if counts[state.value]},
        "best": None if best is None else {"number": best.number, "value": best.value},
        "page": page,
        "pages": pages,
        "columns": names,
        "rows": rows,
    }


def history_series(history: TrialHistory, max_points: int = 2000) -> dict[str, Any]:
    """COMPLETE trials' values by trial number (decimated) and the best value so far (its steps only)."""
    done = history.complete()
    numbers = np.array([r.number for r in done], dtype=float)
    values = np.array([r.value for r in done], dtype=float)
    if len(values) == 0:
        return {"n": 0, "shown": 0, "points": {"x": [], "y": []}, "best": {"x": [], "y": []}}
    signed = values * history.sign
    best = np.minimum.accumulate(signed)
    steps = np.flatnonzero(np.r_[True, best[1:] < best[:-1]])
    best_x = [*numbers[steps].tolist(), float(numbers[-1])]
    best_y = [*(best[steps] * history.sign).tolist(), float(best[-1] * history.sign)]
    keep = _decimate(values, max_points)
    return {
        "n": len(values),
        "shown": len(keep),
        "points": {"x": numbers[keep].tolist(), "y": values[keep].tolist()},
        "best": {"x": best_x, "y": best_y},
    }


def _decimate(values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` values: all of them, or each bin's lowest and highest (in order)."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    bins = max(1, max_points // 2)
    edges = np.linspace(0, n, bins + 1).astype(int)
    keep = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            chunk = values[lo:hi]
            keep += [lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))]
    return np.unique(np.array(keep))


def curve_series(history: TrialHistory, max_curves: int = 300, max_steps: int = 200) -> dict[str, Any]:
    """Learning curves as one polyline list per state (NaN-free, ``null`` between curves), at most
    ``max_curves`` of them and ``max_steps`` points each."""
    with_curves = [r for r in history.records if r.intermediate]
    chosen = _choose_curves(with_curves, history, max_curves)
    traces: dict[str, tuple[list[float | None], list[float | None]]] = {}
    for record in chosen:
        xs, ys = traces.setdefault(record.state.value, ([], []))
        steps = sorted(record.intermediate)
        if len(steps) > max_steps:
            picked = steps[:: math.ceil(len(steps) / max_steps)]
            steps = picked if picked[-1] == steps[-1] else [*picked, steps[-1]]
        xs.extend([*map(float, steps), None])
        ys.extend([*(record.intermediate[s] for s in steps), None])
    ordered = [state.value for state in TrialState if state.value in traces]
    return {
        "n": len(with_curves),
        "shown": len(chosen),
        "traces": [{"state": s, "x": traces[s][0], "y": traces[s][1]} for s in ordered],
    }


def _choose_curves(records: list[TrialRecord], history: TrialHistory, limit: int) -> list[TrialRecord]:
    """All curves, or the best third by last reported value, the latest third and an even sample of the rest."""
    if len(records) <= limit:
        return records
    third = limit // 3
    by_last = sorted(records, key=lambda r: history.signed(r.last_intermediate or 0.0))
    chosen = {r.number: r for r in by_last[:third]}
    chosen.update((r.number, r) for r in records[-third:])
    rest = [r for r in records if r.number not in chosen]
    room = limit - len(chosen)
    if room > 0 and rest:
        for index in np.linspace(0, len(rest) - 1, min(room, len(rest))).astype(int):
            chosen[rest[index].number] = rest[index]
    return [chosen[n] for n in sorted(chosen)]
