"""Each plot holds the traces and data a reader expects."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import lmtune
from lmtune.analysis import plots
from lmtune.analysis.importance import marginal_importance
from lmtune.exceptions import ConfigError
from lmtune.samplers import RandomSampler
from lmtune.testing.functions import CONDITIONAL_SPACE, conditional
from lmtune.trial import TrialState


def _objective(trial: lmtune.Trial) -> float:
    value = conditional(trial)
    for step in range(3):
        trial.report(value + 1.0 / (step + 1), step)
    if trial.number % 4 == 3:
        raise lmtune.TrialPruned()
    if trial.number == 5:
        raise RuntimeError("out of memory")
    return value


@pytest.fixture(scope="module")
def study() -> lmtune.Study:
    study = lmtune.create_study(space=CONDITIONAL_SPACE, sampler=RandomSampler(seed=0))
    study.optimize(_objective, n_trials=24)
    return study


def test_history_has_values_and_a_monotone_best_so_far(study: lmtune.Study) -> None:
    fig = plots.plot_history(study)
    values, best, star = fig.data
    complete = study.get_trials([TrialState.COMPLETE])
    assert list(star.x) == [study.best_trial.number] and star.marker.symbol == "star"
    assert list(values.x) == [r.number for r in complete]
    assert best.name == "best so far"
    assert np.all(np.diff(np.asarray(best.y)) <= 0)
    assert best.y[-1] == pytest.approx(study.best_value)


def test_intermediate_values_are_coloured_by_state(study: lmtune.Study) -> None:
    fig = plots.plot_intermediate(study)
    names = {t.name for t in fig.data}
    assert names == {"complete", "pruned", "failed", f"best: trial {study.best_trial.number}"}
    pruned = next(t for t in fig.data if t.name == "pruned")
    assert pruned.line.color == plots.STATE_COLORS[TrialState.PRUNED]
    n_pruned = len(study.get_trials([TrialState.PRUNED]))
    assert sum(y is None for y in pruned.y) == n_pruned  # one gap after each trial's curve


def test_parallel_coordinates_marks_inactive_conditional_parameters(study: lmtune.Study) -> None:
    fig = plots.plot_parallel_coordinates(study)
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert list(dims) == ["optimizer", "lr", "momentum", "beta2", "value"]
    assert "inactive" in dims["momentum"].ticktext
    assert len(dims["value"].values) == len(study.get_trials([TrialState.COMPLETE]))


def test_slice_has_one_panel_per_parameter_and_log_axes(study: lmtune.Study) -> None:
    fig = plots.plot_slice(study, ["lr", "optimizer"])
    assert [t.name for t in fig.data if not t.name.startswith("best")] == ["lr", "optimizer"]
    assert fig.layout.xaxis.type == "log"
    assert list(fig.layout.xaxis2.ticktext) == ["sgd", "adam"]
    with pytest.raises(ConfigError, match="unknown parameter"):
        plots.plot_slice(study, ["nope"])


def test_contour_interpolates_over_the_two_parameters(study: lmtune.Study) -> None:
    fig = plots.plot_contour(study, "lr", "optimizer")
    contour, points, best = fig.data
    assert best.name == f"best: trial {study.best_trial.number}"
    assert np.asarray(contour.z).shape == (plots.CONTOUR_RESOLUTION, plots.CONTOUR_RESOLUTION)
    assert len(points.x) == len(study.get_trials([TrialState.COMPLETE]))


def test_timeline_has_one_row_per_worker_and_bars_per_state(study: lmtune.Study) -> None:
    fig = plots.plot_timeline(study)
    assert {t.name for t in fig.data} == {"complete", "pruned", "failed"}
    assert {w for t in fig.data for w in t.y if w is not None} == {study.worker_id}
    segments = [(t.x[i], t.x[i + 1]) for t in fig.data for i in range(0, len(t.x), 3)]
    assert len(segments) == len(study.trials)
    assert all(0 <= start <= end for start, end in segments)


def test_importance_bars_follow_the_ranking(study: lmtune.Study) -> None:
    result = marginal_importance(study)
    fig = plots.plot_importance(result)
    assert list(fig.data[0].y)[::-1] == result.ranked()
    assert list(fig.data[0].error_x.array)[::-1] == [result.std[n] for n in result.ranked()]


def test_empty_study_gives_explaining_figures() -> None:
    figures = plots.study_figures(lmtune.create_study())
    assert set(figures) == {"history", "intermediate", "parallel", "slice", "contour", "timeline"}
    assert all(len(f.data) == 0 and f.layout.annotations for f in figures.values())


def test_save_figure_html_and_json(study: lmtune.Study, tmp_path: Path) -> None:
    fig = plots.plot_history(study)
    html = plots.save_figure(fig, tmp_path / "h.html").read_text()
    assert "<script src=" not in html and "Plotly.newPlot" in html
    assert '"best so far"' in plots.save_figure(fig, tmp_path / "h.json").read_text()
    with pytest.raises(ConfigError, match="cannot write a figure"):
        plots.save_figure(fig, tmp_path / "h.txt")


@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("google-chrome") is None,
    reason="static images need Chromium or Chrome (Debian: apt-get install chromium)",
)
def test_save_figure_static_png_and_svg(study: lmtune.Study, tmp_path: Path) -> None:
    fig = plots.plot_history(study)
    png = plots.save_figure(fig, tmp_path / "h.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plots.save_figure(fig, tmp_path / "h.svg").read_text()
    assert svg.lstrip().startswith("<svg") and "best so far" in svg


def test_trial_and_step_axes_have_whole_number_ticks(study: lmtune.Study) -> None:
    history, intermediate = plots.plot_history(study), plots.plot_intermediate(study)
    for axis in (history.layout.xaxis, intermediate.layout.xaxis):
        assert axis.tickformat == "d" and float(axis.dtick).is_integer() and axis.dtick >= 1
    assert plots.integer_axis(3)["dtick"] == 1
    assert plots.integer_axis(300)["dtick"] == 50


def test_slice_colours_early_trials_visibly_and_stars_the_best(study: lmtune.Study) -> None:
    fig = plots.plot_slice(study)
    colours = fig.data[0].marker.colorscale
    assert colours[0][1] != "rgb(247,251,255)" and colours[0][1].lower() not in ("#ffffff", "white")
    stars = [t for t in fig.data if t.name.startswith("best")]
    assert stars and all(t.y[0] == study.best_value for t in stars)


def test_slice_of_many_parameters_fits_a_1280_pixel_page() -> None:
    space = {f"p{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(7)}
    study = lmtune.create_study(space=space, seed=0)
    study.optimize(lambda t: sum(t.params.values()), n_trials=8)
    fig = plots.plot_slice(study)
    assert fig.layout.width is None  # follows the page width
    assert max(a.domain[1] for a in (fig.layout.xaxis, fig.layout.xaxis3)) <= 1.0
    assert fig.layout.xaxis4.domain == fig.layout.xaxis.domain  # the fourth panel starts a new row


def test_contour_names_its_axes_as_its_title_does() -> None:
    space = {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 10.0},
    }
    study = lmtune.create_study(space=space, seed=0)
    study.optimize(lambda t: 10 * t.params["y"] + t.params["x"], n_trials=20)
    # y matters most, but the first declared parameter stays horizontal.
    fig = plots.study_figures(study, marginal_importance(study))["contour"]
    assert fig.layout.title.text == "Contour of the value: x (horizontal) by y (vertical)"
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("x", "y")
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.nanmean(np.diff(z, axis=0)) > 10 * abs(np.nanmean(np.diff(z, axis=1)))  # rises along y: rows
