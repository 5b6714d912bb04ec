"""The dashboard's server-side cuts: one page of the table, decimated history points, a sample of curves."""

from __future__ import annotations

import numpy as np

from lmtune.dashboard.aggregate import curve_series, history_series, study_view
from lmtune.history import TrialHistory
from lmtune.trial import TrialRecord, TrialState


def _history(n: int, direction: str = "minimize", seed: int = 0) -> TrialHistory:
    rng = np.random.default_rng(seed)
    records = []
    for number in range(n):
        state = TrialState.PRUNED if number % 10 == 3 else TrialState.COMPLETE
        value = float(rng.normal())
        curve = {step: value + 1.0 / (step + 1) for step in range(3)}
        records.append(
            TrialRecord(number, number, state, params={"x": value}, value=value, intermediate=curve)
        )
    return TrialHistory(tuple(records), direction)


def test_view_sends_one_page_newest_first_with_counts_and_best() -> None:
    history = _history(1050)
    view = study_view(history, page=0, page_rows=100)
    assert [r["number"] for r in view["rows"]] == list(range(1049, 949, -1))
    assert view["pages"] == 11 and view["n_trials"] == 1050 and view["columns"] == ["x"]
    assert view["states"] == {"COMPLETE": 945, "PRUNED": 105}
    best = history.best()
    assert best is not None and view["best"] == {"number": best.number, "value": best.value}
    last = study_view(history, page=99, page_rows=100)  # past the end: the last page
    assert last["page"] == 10 and [r["number"] for r in last["rows"]] == list(range(49, -1, -1))


def test_history_points_are_decimated_keeping_extremes_and_the_best_steps() -> None:
    for direction in ("minimize", "maximize"):
        history = _history(6000, direction)
        series = history_series(history, max_points=400)
        done = history.complete()
        values = np.array([r.value for r in done])
        assert series["n"] == len(done)
        assert len(series["points"]["x"]) == series["shown"] <= 400
        assert min(series["points"]["y"]) == values.min() and max(series["points"]["y"]) == values.max()
        assert series["points"]["x"] == sorted(series["points"]["x"])
        best = series["best"]["y"]
        ordered = best if direction == "maximize" else [-v for v in best]
        assert ordered == sorted(ordered)  # improves monotonically
        assert best[-1] == (values.max() if direction == "maximize" else values.min())
        assert len(best) < 40  # only the steps, not one point per trial
    small = history_series(_history(50), max_points=400)
    assert small["shown"] == small["n"] == 45


def test_curves_are_sampled_keeping_the_best_and_the_latest() -> None:
    history = _history(3000)
    series = curve_series(history, max_curves=90)
    assert series["n"] == 3000 and series["shown"] == 90
    drawn = sum(t["x"].count(None) for t in series["traces"])
    assert drawn == 90
    complete = next(t for t in series["traces"] if t["state"] == "COMPLETE")
    best = min(history.records, key=lambda r: r.intermediate[2])
    assert best.intermediate[2] in complete["y"]
    latest = [r for r in history.records if r.state is TrialState.COMPLETE][-1]
    assert latest.intermediate[0] in complete["y"]
    assert curve_series(_history(20), max_curves=90)["shown"] == 20
