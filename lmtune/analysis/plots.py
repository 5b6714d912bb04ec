"""Plotly figures of a study; the HTML report and the live dashboard draw the same ones.

Each function takes a :class:`~lmtune.study.Study` or a :class:`~lmtune.history.TrialHistory` snapshot and
returns a ``plotly.graph_objects.Figure``; :func:`save_figure` writes one as HTML, JSON, PNG, SVG or PDF.
Studies with many trials stay light: learning curves and timeline bars are grouped into one trace per trial
state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmtune.analysis.records import analysis_space, as_history
from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.history import TrialHistory
from lmtune.space import CategoricalDistribution, Distribution, FloatDistribution, IntDistribution
from lmtune.trial import TrialRecord, TrialState

try:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError("plots need plotly: pip install 'lmtune[viz]'") from exc

if TYPE_CHECKING:
    from lmtune.analysis.importance import Importance
    from lmtune.study import Study

__all__ = [
    "STATE_COLORS",
    "message_figure",
    "plot_contour",
    "plot_history",
    "plot_importance",
    "plot_intermediate",
    "plot_parallel_coordinates",
    "plot_slice",
    "plot_timeline",
    "save_figure",
    "study_figures",
]

STATE_COLORS = {
    TrialState.COMPLETE: "#1f77b4",
    TrialState.PRUNED: "#ff7f0e",
    TrialState.PAUSED: "#9467bd",
    TrialState.RUNNING: "#2ca02c",
    TrialState.FAILED: "#d62728",
    TrialState.WAITING: "#7f7f7f",
}
STATIC_FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp")
CONTOUR_RESOLUTION = 40  # grid points per axis of the interpolated contour
SLICE_COLUMNS = 3  # panels per row of the slice plot, so it fits a 1,280 px page
SLICE_ROW_HEIGHT = 300  # pixels
BEST_COLOR = "#d62728"
BEST_MARKER = {"symbol": "star", "size": 14, "color": BEST_COLOR, "line": {"color": "black", "width": 1}}
TRIAL_COLORSCALE = "Viridis"  # dark to light: early trials stay visible on a white page
WEBGL_POINTS = 2000  # above this many markers or segments a trace is drawn with WebGL, not SVG


def _layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    extra.setdefault("margin", {"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_layout(title=title, template="plotly_white", **extra)
    return fig


def message_figure(title: str, message: str) -> go.Figure:
    """An empty figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def integer_axis(largest: float) -> dict[str, Any]:
    """Axis settings with ticks only at whole numbers (trial numbers, steps): a step of 1, 2 or 5 times a power of
    ten that gives at most 8 ticks up to ``largest``."""
    steps = (n * 10**k for k in range(15) for n in (1, 2, 5))
    step = next(s for s in steps if largest / s <= 8)
    return {"tickmode": "linear", "tick0": 0, "dtick": step, "tickformat": "d"}


def _best_number(history: TrialHistory) -> int | None:
    best = history.best()
    return None if best is None else best.number


# Optimisation history --------------------------------------------------------------------------------------------
def plot_history(source: Study | TrialHistory) -> go.Figure:
    """Each COMPLETE trial's value by trial number, with the best value so far as a step line."""
    history = as_history(source)
    done = history.complete()
    title = "Optimisation history"
    if not done:
        return message_figure(title, "no COMPLETE trial yet")
    numbers = [r.number for r in done]
    values = np.array([r.value for r in done], dtype=float)
    best = np.minimum.accumulate(values) if history.direction == "minimize" else np.maximum.accumulate(values)
    fig = go.Figure()
    scatter = go.Scattergl if len(numbers) > WEBGL_POINTS else go.Scatter
    fig.add_trace(
        scatter(
            x=numbers,
            y=values,
            mode="markers",
            name="value",
            marker={"color": STATE_COLORS[TrialState.COMPLETE], "size": 6},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=numbers, y=best, mode="lines", name="best so far", line={"shape": "hv", "color": BEST_COLOR}
        )
    )
    top = history.best()
    if top is not None:
        fig.add_trace(
            go.Scatter(
                x=[top.number],
                y=[top.value],
                mode="markers",
                name=f"best: trial {top.number}",
                marker=BEST_MARKER,
            )
        )
    fig.update_xaxes(**integer_axis(max(numbers)))
    return _layout(fig, title, xaxis_title="trial", yaxis_title=f"value ({history.direction})")


# Parameters --------------------------------------------------------------------------------------------------------
def _param_names(history: TrialHistory, params: Sequence[str] | None) -> list[str]:
    space = analysis_space(history)
    if params is None:
        return list(space)
    unknown = [p for p in params if p not in space]
    if unknown:
        raise ConfigError(f"params: unknown parameter(s) {unknown}; the study has {list(space)}")
    return list(params)


def _is_log(dist: Distribution) -> bool:
    return isinstance(dist, (FloatDistribution, IntDistribution)) and bool(getattr(dist, "log", False))


def _axis_position(dist: Distribution, value: Any) -> float:
    """Where ``value`` sits on its axis: category index for categoricals, the number itself otherwise."""
    if isinstance(dist, CategoricalDistribution):
        return float(dist.index(value))
    return float(value)


def _category_axis(dist: Distribution) -> dict[str, Any]:
    if isinstance(dist, CategoricalDistribution):
        return {"tickvals": list(range(len(dist.choices))), "ticktext": [str(c) for c in dist.choices]}
    return {"type": "log"} if _is_log(dist) else {}


def plot_parallel_coordinates(source: Study | TrialHistory, params: Sequence[str] | None = None) -> go.Figure:
    """One line per COMPLETE trial through its parameter values, coloured by value. A parameter a trial lacks
    (an inactive conditional one) sits on an extra "inactive" tick below its axis."""
    history = as_history(source)
    space = analysis_space(history)
    names = _param_names(history, params)
    done = [r for r in history.complete() if any(n in r.params for n in names)]
    title = "Parallel coordinates"
    if not done or not names:
        return message_figure(title, "no COMPLETE trial yet")
    dimensions = [_parallel_dimension(name, space[name], done) for name in names]
    values = [r.value for r in done]
    dimensions.append({"label": "value", "values": values})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            line={
                "color": values,
                "colorscale": "Viridis",
                "reversescale": history.direction == "minimize",
                "showscale": True,
            },
        )
    )
    return _layout(fig, title, margin={"l": 80, "r": 40, "t": 90, "b": 40})


def _parallel_dimension(name: str, dist: Distribution, records: Sequence[TrialRecord]) -> dict[str, Any]:
    present = [r.params[name] for r in records if name in r.params]
    if isinstance(dist, CategoricalDistribution):
        positions = [float(dist.index(v)) for v in present]
        ticks = list(range(len(dist.choices)))
        labels = [str(c) for c in dist.choices]
    else:
        positions = [math.log10(v) if _is_log(dist) else float(v) for v in present]
        bounds = positions or [  # no trial used it: the declared range
            math.log10(b) if _is_log(dist) else float(b)
            for b in (dist.low, dist.high)  # type: ignore[attr-defined]
        ]
        low, high = min(bounds), max(bounds)
        ticks = list(np.linspace(low, high, 5)) if high > low else [low]
        labels = [f"{10**t:.3g}" if _is_log(dist) else f"{t:.3g}" for t in ticks]
    lowest, highest = min([*ticks, *positions]), max([*ticks, *positions])
    inactive = lowest - max(1.0, highest - lowest) * 0.15
    it = iter(positions)
    column = [next(it) if name in r.params else inactive for r in records]
    if len(present) < len(records):
        ticks, labels = [inactive, *ticks], ["inactive", *labels]
    return {"label": name, "values": column, "tickvals": ticks, "ticktext": labels}


def plot_slice(source: Study | TrialHistory, params: Sequence[str] | None = None) -> go.Figure:
    """The value against each parameter in turn (panels in rows of three), coloured by trial number on a scale
    where early trials stay visible; the best trial is a star in every panel."""
    history = as_history(source)
    space = analysis_space(history)
    names = _param_names(history, params)
    done = history.complete()
    title = "Slices"
    if not done or not names:
        return message_figure(title, "no COMPLETE trial yet")
    columns = min(SLICE_COLUMNS, len(names))
    rows = -(-len(names) // columns)
    fig = make_subplots(
        rows=rows, cols=columns, horizontal_spacing=0.06, vertical_spacing=0.3 / rows, shared_yaxes=True
    )
    best = _best_number(history)
    last = max(r.number for r in done)
    for i, name in enumerate(names):
        row, col = divmod(i, columns)
        dist = space[name]
        present = [r for r in done if name in r.params]
        fig.add_trace(
            go.Scatter(
                x=[_axis_position(dist, r.params[name]) for r in present],
                y=[r.value for r in present],
                mode="markers",
                name=name,
                showlegend=False,
                marker={
                    "color": [r.number for r in present],
                    "colorscale": TRIAL_COLORSCALE,
                    "cmin": 0,
                    "cmax": max(1, last),
                    "size": 7,
                    "showscale": i == 0,
                    "colorbar": {"title": "trial", **integer_axis(last)},
                },
                text=[f"trial {r.number}" for r in present],
            ),
            row=row + 1,
            col=col + 1,
        )
        top = next((r for r in present if r.number == best), None)
        if top is not None:
            fig.add_trace(
                go.Scatter(
                    x=[_axis_position(dist, top.params[name])],
                    y=[top.value],
                    mode="markers",
                    name=f"best: trial {best}",
                    showlegend=i == 0,
                    legendgroup="best",
                    marker=BEST_MARKER,
                ),
                row=row + 1,
                col=col + 1,
            )
        fig.update_xaxes(title_text=name, row=row + 1, col=col + 1, **_category_axis(dist))
        if col == 0:
            fig.update_yaxes(title_text="value", row=row + 1, col=1)
    return _layout(
        fig,
        title,
        height=SLICE_ROW_HEIGHT * rows + 80,
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    )


def _unit_coordinate(dist: Distribution, value: Any) -> float:
    """A continuous position in [0, 1] (log scales in the log), used to interpolate between trials."""
    if isinstance(dist, CategoricalDistribution):
        return dist.index(value) / max(1, len(dist.choices) - 1)
    low, high = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
    if high == low:
        return 0.5
    if _is_log(dist):
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (float(value) - low) / (high - low)


def _from_unit_coordinate(dist: Distribution, u: np.ndarray) -> np.ndarray:
    if isinstance(dist, CategoricalDistribution):
        return u * max(1, len(dist.choices) - 1)
    low, high = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
    if _is_log(dist):
        return np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def plot_contour(source: Study | TrialHistory, x: str | None = None, y: str | None = None) -> go.Figure:
    """The value over two parameters, linearly interpolated between COMPLETE trials, with the trials on top."""
    from scipy.interpolate import griddata

    history = as_history(source)
    space = analysis_space(history)
    names = _param_names(history, None)
    x = x if x is not None else (names[0] if names else None)
    y = y if y is not None else next((n for n in names if n != x), None)
    if x is None or y is None:
        return message_figure("Contour", "a contour needs two parameters")
    title = f"Contour of the value: {x} (horizontal) by {y} (vertical)"
    _param_names(history, [x, y])
    done = [r for r in history.complete() if x in r.params and y in r.params]
    if len({(repr(r.params[x]), repr(r.params[y])) for r in done}) < 3:
        return message_figure(title, "a contour needs at least 3 distinct COMPLETE trials")
    dx, dy = space[x], space[y]
    points = np.array([[_unit_coordinate(dx, r.params[x]), _unit_coordinate(dy, r.params[y])] for r in done])
    values = np.array([r.value for r in done], dtype=float)
    grid = np.linspace(0.0, 1.0, CONTOUR_RESOLUTION)
    gx, gy = np.meshgrid(grid, grid)
    try:
        z = griddata(points, values, (gx, gy), method="linear")
    except Exception:  # collinear trials (e.g. one parameter constant) cannot be triangulated
        z = griddata(points, values, (gx, gy), method="nearest")
    fig = go.Figure()
    fig.add_trace(
        go.Contour(
            x=_from_unit_coordinate(dx, grid),
            y=_from_unit_coordinate(dy, grid),
            z=z,
            colorscale="Viridis",
            reversescale=history.direction == "minimize",
            colorbar={"title": "value"},
            connectgaps=False,
            name="interpolated",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[_axis_position(dx, r.params[x]) for r in done],
            y=[_axis_position(dy, r.params[y]) for r in done],
            mode="markers",
            name="trials",
            marker={"color": "white", "line": {"color": "black", "width": 1}, "size": 6},
            text=[f"trial {r.number}: {r.value:.4g}" for r in done],
        )
    )
    best = history.best()
    if best is not None and x in best.params and y in best.params:
        fig.add_trace(
            go.Scatter(
                x=[_axis_position(dx, best.params[x])],
                y=[_axis_position(dy, best.params[y])],
                mode="markers",
                name=f"best: trial {best.number}",
                marker=BEST_MARKER,
            )
        )
    fig.update_xaxes(title_text=x, **_category_axis(dx))
    fig.update_yaxes(title_text=y, **_category_axis(dy))
    return _layout(fig, title, legend={"orientation": "h", "y": -0.2})


def plot_importance(result: Importance) -> go.Figure:
    """Horizontal bars of each parameter's importance with its spread (one standard deviation)."""
    names = list(reversed(result.ranked()))
    fig = go.Figure(
        go.Bar(
            x=[result.mean[n] for n in names],
            y=names,
            orientation="h",
            name=result.method,
            error_x={"type": "data", "array": [result.std[n] for n in names], "visible": True},
            marker={"color": "#1f77b4"},
        )
    )
    return _layout(
        fig,
        f"Parameter importance ({result.method}, {result.n_trials} trials)",
        xaxis_title="share of variance explained alone",
        height=max(250, 40 * len(names) + 120),
    )


# Trials over time ---------------------------------------------------------------------------------------------------
def plot_intermediate(source: Study | TrialHistory) -> go.Figure:
    """Learning curves (reported value by step), one colour and one trace per trial state."""
    history = as_history(source)
    by_state: dict[TrialState, tuple[list[float | None], list[float | None], list[str | None]]] = {}
    for record in history:
        if not record.intermediate:
            continue
        xs, ys, texts = by_state.setdefault(record.state, ([], [], []))
        steps = sorted(record.intermediate)
        xs.extend([*map(float, steps), None])
        ys.extend([*(record.intermediate[s] for s in steps), None])
        texts.extend([*([f"trial {record.number}"] * len(steps)), None])
    title = "Intermediate values"
    if not by_state:
        return message_figure(title, "no trial has reported an intermediate value yet")
    last_step = max(max(r.intermediate) for r in history if r.intermediate)
    fig = go.Figure()
    for state in TrialState:
        if state in by_state:
            xs, ys, texts = by_state[state]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    text=texts,
                    mode="lines",
                    name=state.value.lower(),
                    line={"color": STATE_COLORS[state], "width": 1},
                    marker={"size": 3},
                    connectgaps=False,
                )
            )
    best = history.best()
    if best is not None and best.intermediate:
        steps = sorted(best.intermediate)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[best.intermediate[s] for s in steps],
                mode="lines+markers",
                name=f"best: trial {best.number}",
                line={"color": BEST_COLOR, "width": 3},
                marker={"size": 6},
            )
        )
    fig.update_xaxes(**integer_axis(last_step))
    return _layout(fig, title, xaxis_title="step", yaxis_title="reported value")


def plot_timeline(source: Study | TrialHistory, now: float | None = None) -> go.Figure:
    """One thick segment per trial from start to finish (still running: to ``now``), one row per worker; drawn
    as one line trace per state, so thousands of trials stay quick to render."""
    history = as_history(source)
    started = [r for r in history if r.started_at is not None]
    title = "Timeline"
    if not started:
        return message_figure(title, "no trial has started yet")
    now = time.time() if now is None else now
    origin = min(r.started_at for r in started)  # type: ignore[type-var]
    scatter = go.Scattergl if len(started) > WEBGL_POINTS else go.Scatter
    fig = go.Figure()
    for state in TrialState:
        rows = [r for r in started if r.state is state]
        if not rows:
            continue
        xs: list[float | None] = []
        ys: list[str | None] = []
        texts: list[str | None] = []
        for r in rows:
            start = r.started_at - origin  # type: ignore[operator]
            label = f"trial {r.number}: {_end(r, now) - r.started_at:.1f} s"  # type: ignore[operator]
            xs.extend([start, _end(r, now) - origin, None])
            ys.extend([r.worker_id or "unknown"] * 2 + [None])
            texts.extend([label, label, None])
        fig.add_trace(
            scatter(
                x=xs,
                y=ys,
                text=texts,
                mode="lines",
                name=state.value.lower(),
                connectgaps=False,
                line={"color": STATE_COLORS[state], "width": 10},
                hoverinfo="text",
            )
        )
    return _layout(fig, title, xaxis_title="seconds since the first trial started", yaxis_title="worker")


def _end(record: TrialRecord, now: float) -> float:
    return record.finished_at if record.finished_at is not None else now


# All at once, and files ---------------------------------------------------------------------------------------------
def study_figures(source: Study | TrialHistory, importance: Importance | None = None) -> dict[str, go.Figure]:
    """Every plot of a study by name, in reading order; ``importance`` adds its bars and picks the contour's two
    parameters (the two most important)."""
    history = as_history(source)
    top: list[str | None] = [None, None]
    if importance is not None and len(importance.mean) >= 2:
        declared = list(analysis_space(history))
        top = sorted(importance.ranked()[:2], key=declared.index)  # the first declared one is horizontal
    figures = {
        "history": plot_history(history),
        "intermediate": plot_intermediate(history),
        "parallel": plot_parallel_coordinates(history),
        "slice": plot_slice(history),
        "contour": plot_contour(history, *top),
        "timeline": plot_timeline(history),
    }
    if importance is not None:
        figures["importance"] = plot_importance(importance)
    return figures


def save_figure(fig: go.Figure, path: str | Path) -> Path:
    """Write ``fig`` by the file's extension: ``.html`` (self-contained), ``.json``, or a static image
    (``.png``, ``.svg``, ``.pdf``: rendered by kaleido in a local Chrome or Chromium, found on the PATH or in
    ``BROWSER_PATH``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".html":
        fig.write_html(path, include_plotlyjs=True, full_html=True)
    elif suffix == ".json":
        path.write_text(fig.to_json())
    elif suffix in STATIC_FORMATS:
        try:
            fig.write_image(path)
        except Exception as exc:
            raise MissingDependencyError(
                f"could not render {path.name}: {type(exc).__name__}: {exc}. Static images need kaleido "
                f"(pip install 'lmtune[viz]') and a Chrome or Chromium browser (Debian: apt-get install chromium; "
                f"or set BROWSER_PATH)"
            ) from exc
    else:
        raise ConfigError(
            f"cannot write a figure as {suffix or 'a file without extension'!r}; use .html, .json, "
            f"{', '.join(STATIC_FORMATS)}"
        )
    return path
