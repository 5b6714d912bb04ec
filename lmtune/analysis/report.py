"""The HTML report of a study: one self-contained file that opens offline.

Sections: summary (best configuration, validation and test scores, trials by state, time spent), final
evaluation (search, re-evaluated and test scores side by side, error analysis), plots, importance and the
table of trials. plotly.js is inlined once, gzip-compressed (the browser unpacks it with ``DecompressionStream``),
and each plot is its figure's JSON, drawn by one loader script; nothing is loaded from the network.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lmtune.analysis.evaluate import FinalEvaluation, load_final_evaluation
from lmtune.analysis.finish import load_final_result
from lmtune.analysis.importance import Importance, importance
from lmtune.analysis.progress import track
from lmtune.analysis.records import param_label, read_history
from lmtune.exceptions import ConfigError, LmtuneError
from lmtune.history import TrialHistory
from lmtune.storage import Storage, get_storage
from lmtune.trial import TrialRecord, TrialState

__all__ = ["SECTIONS", "build_report", "render_report"]

logger = logging.getLogger("lmtune")

SECTIONS = ("summary", "final-evaluation", "plots", "importance", "trials")
GPU_MARKERS = ("cuda", "gpu")
MIN_IMPORTANCE_TRIALS = 10  # fewer COMPLETE trials than this (or than 2 per parameter) give no importance

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 2rem; color: #222;
       box-sizing: border-box; }
.scroll { overflow-x: auto; max-width: 100%; }
.result { font-size: 1.1rem; border-left: 4px solid #2ca02c; padding: 0.25rem 0.75rem; background: #f4faf4; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.chosen td { background: #e8f4e8; font-weight: 600; }
.state-COMPLETE { color: #1f77b4; } .state-PRUNED { color: #ff7f0e; } .state-FAILED { color: #d62728; }
.state-RUNNING { color: #2ca02c; } .state-PAUSED { color: #9467bd; }
.note { color: #666; }
.plot { margin-bottom: 1.5rem; width: 100%; min-height: 420px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(
    header: Iterable[str], rows: Iterable[Iterable[Any]], row_classes: Iterable[str] | None = None
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    classes = list(row_classes) if row_classes is not None else None
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_e(classes[i])}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _fmt(value: float | None, digits: int = 6) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _params_text(params: Mapping[str, Any]) -> str:
    return _e(", ".join(f"{k}={param_label(v)}" for k, v in params.items()))


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"[{low:.4g}, {high:.4g}]"


# Time -------------------------------------------------------------------------------------------------------------
def _on_gpu(record: TrialRecord) -> bool:
    attrs = {**record.user_attrs, **record.system_attrs}
    text = json.dumps({k: attrs[k] for k in ("device", "gpus", "gpu") if k in attrs}).lower()
    return any(marker in text for marker in GPU_MARKERS)


def time_spent(history: TrialHistory) -> dict[str, float]:
    """Seconds of trial wall time, split by where trials ran (a record naming a CUDA device counts as GPU)."""
    spent = {"total": 0.0, "gpu": 0.0, "cpu": 0.0}
    for record in history:
        if record.duration is None:
            continue
        spent["total"] += record.duration
        spent["gpu" if _on_gpu(record) else "cpu"] += record.duration
    return spent


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h ({seconds:.0f} s)"


# Sections ---------------------------------------------------------------------------------------------------------
NO_RESULT = (
    "none: no final result is stored for this study. `lmtune run` with a `task:` section saves the best model "
    "and tests it once after the search; `final_evaluation:` in the study file re-runs the top configurations "
    "first."
)


def _test_text(final: FinalEvaluation | None, result: Mapping[str, Any] | None) -> str:
    """The test score with its interval, from the final evaluation or else from the saved model's summary."""
    if final is not None and final.test is not None:
        t = final.test
        return f"{t.score:.4g} {_interval(t.ci_low, t.ci_high)} ({t.metric}, {t.n_examples} test examples)"
    if result is not None and result.get("metric") in (result.get("test") or {}):
        metric = result["metric"]
        low, high = result.get("test_interval") or (None, None)
        interval = f" {_interval(low, high)} (95% interval)" if low is not None else ""
        n = (result.get("split_sizes") or {}).get("test")
        size = f", {n} test examples" if n else ""
        return f"{result['test'][metric]:.4g}{interval} ({metric}{size})"
    return NO_RESULT


def _summary(
    name: str,
    storage_url: str,
    history: TrialHistory,
    final: FinalEvaluation | None,
    result: Mapping[str, Any] | None,
) -> str:
    counts = Counter(r.state for r in history)
    states = ", ".join(f"{s.value.lower()} {counts[s]}" for s in TrialState if counts[s]) or "none"
    best = history.best()
    spent = time_spent(history)
    test = _test_text(final, result)
    model = (result or {}).get("output_dir") or (
        final.test.details.get("checkpoint_dir") if final and final.test else None
    )
    rows = [
        ("study", _e(name)),
        ("storage", _e(storage_url)),
        ("direction", _e(history.direction)),
        ("trials", f"{len(history)} ({_e(states)})"),
        ("best trial", "–" if best is None else f"#{best.number}"),
        ("best configuration", "–" if best is None else _params_text(best.params)),
        ("validation score (search)", _fmt(best.value if best else None)),
        ("test score", f"<b>{_e(test)}</b>" if test != NO_RESULT else _e(test)),
        ("saved model", "–" if not model else f"<code>{_e(model)}</code>"),
        ("trial time", _hours(spent["total"])),
        ("GPU time", _hours(spent["gpu"])),
        ("CPU time", _hours(spent["cpu"])),
    ]
    return _table(["", ""], rows)


def _result_section(result: Mapping[str, Any]) -> str:
    """The saved best model: its folder and its validation and test scores side by side."""
    metric = result.get("metric")
    validation, test = result.get("validation") or {}, result.get("test") or {}
    names = list(dict.fromkeys([*validation, *test]))
    rows = [
        [f"<b>{_e(n)}</b>" if n == metric else _e(n), _fmt(validation.get(n), 4), _fmt(test.get(n), 4)]
        for n in names
    ]
    return (
        f'<p class="result">Test {_e(_test_text(None, result))} for the best trial '
        f"#{_e(result.get('best_trial', '?'))}; its model is saved in <code>{_e(result.get('output_dir'))}</code>."
        "</p>" + _table(["metric", "validation", "test (evaluated once)"], rows)
    )


def _final_section(final: FinalEvaluation | None, result: Mapping[str, Any] | None = None) -> str:
    if final is None and result is not None:
        return _result_section(result)
    if final is None:
        return (
            '<p class="note">No final evaluation was run. Enable it with <code>final_evaluation: {top_k: 3, '
            "seeds: 3}</code> in the study file to re-run the top configurations and test the chosen one "
            "once.</p>"
        )
    repeats = (
        f"{len(final.repeats['seeds'])} seeds {final.repeats['seeds']}"
        if "seeds" in final.repeats
        else f"{final.repeats['folds']}-fold cross-validation"
    )
    header = [
        "trial",
        "configuration",
        "search score",
        "re-evaluated mean ± std",
        f"{final.confidence:.0%} interval",
        "test score",
    ]
    rows, classes = [], []
    for i, c in enumerate(final.candidates):
        chosen = i == final.chosen
        test = "–"
        if chosen and final.test is not None:
            test = f"{final.test.score:.4g} {_interval(final.test.ci_low, final.test.ci_high)}"
        rows.append(
            [
                f"#{c.trial_number}" + (" (chosen)" if chosen else ""),
                _params_text(c.params),
                f"{c.search_value:.4g}",
                f"{c.mean:.4g} ± {c.std:.2g}",
                _interval(c.ci_low, c.ci_high),
                test,
            ]
        )
        classes.append("chosen" if chosen else "")
    parts = [
        f"<p>Top {len(final.candidates)} configurations re-run with {_e(repeats)}; the best mean is chosen "
        f"and evaluated once on the test split.</p>",
        _table(header, rows, classes),
    ]
    details = final.test.details if final.test is not None else {}
    if "confusion_matrix" in details:
        labels = details.get("labels", [])
        matrix_rows = [
            [f"<b>{_e(label)}</b>", *map(str, row)]
            for label, row in zip(labels, details["confusion_matrix"], strict=False)
        ]
        parts += [
            "<h3>Confusion matrix (rows: true label, columns: predicted)</h3>",
            _table(["", *map(str, labels)], matrix_rows),
        ]
    if details.get("confident_errors"):
        parts += [
            "<h3>Most confidently wrong test examples</h3>",
            _table(
                ["text", "label", "predicted", "probability"],
                [
                    [_e(x["text"]), _e(x["label"]), _e(x["predicted"]), f"{x['probability']:.3f}"]
                    for x in details["confident_errors"]
                ],
            ),
        ]
    return "\n".join(parts)


def importance_shortfall(history: TrialHistory) -> str | None:
    """Why importance would not be meaningful for ``history`` (too few COMPLETE trials), or None."""
    from lmtune.analysis.records import analysis_space

    n_params = len(analysis_space(history))
    needed = max(MIN_IMPORTANCE_TRIALS, 2 * n_params)
    done = len(history.complete())
    if done >= needed:
        return None
    return (
        f"Too few trials for parameter importance: {done} COMPLETE trial{'s' * (done != 1)} for {n_params} "
        f"parameter{'s' * (n_params != 1)}; at least {needed} are needed before the estimate means anything."
    )


def _importance_section(results: list[Importance], errors: list[str]) -> str:
    if not results:
        return f'<p class="note">{_e("; ".join(errors) or "importance was not computed")}</p>'
    names = results[0].ranked()
    header = ["parameter", *(f"{r.method} (± std)" for r in results)]
    rows = [[_e(n), *(f"{r.mean.get(n, 0):.3f} ± {r.std.get(n, 0):.3f}" for r in results)] for n in names]
    note = (
        '<p class="note">Share of the value\'s variance each parameter explains alone. fANOVA: random-forest '
        "surrogate, spread over forest seeds; marginal: binned correlation ratio, spread over bootstrap "
        "resamples.</p>"
    )
    return note + _table(header, rows)


def _trials_section(history: TrialHistory) -> str:
    names: list[str] = []
    for record in history:
        names.extend(n for n in record.params if n not in names)
    best = history.best()
    rows, classes = [], []
    for r in history:
        is_best = best is not None and r.number == best.number
        classes.append("chosen" if is_best else "")
        rows.append(
            [
                f"{r.number} (best)" if is_best else str(r.number),
                f'<span class="state-{r.state.value}">{r.state.value}</span>',
                _fmt(r.value),
                *(_e(param_label(r.params[n])) if n in r.params else "" for n in names),
                _fmt(r.duration, 4),
                _e(r.worker_id or ""),
                _e(r.failure_reason or ""),
            ]
        )
    return _table(["#", "state", "value", *names, "duration (s)", "worker", "failure reason"], rows, classes)


# Assembly ---------------------------------------------------------------------------------------------------------
LOADER = """
(async () => {
  const packed = document.getElementById("plotly-gzip").textContent;
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const script = document.createElement("script");
  script.textContent = await new Response(stream).text();
  document.head.appendChild(script);
  const figures = JSON.parse(document.getElementById("figures").textContent);
  for (const [key, figure] of Object.entries(figures)) {
    const layout = Object.assign({}, figure.layout, { autosize: true });
    delete layout.width;
    Plotly.newPlot("plot-" + key, figure.data, layout, { displaylogo: false, responsive: true });
  }
})();
"""


def _packed_plotly() -> str:
    """plotly.js gzip-compressed and base64-encoded (a third of its 4.8 MB)."""
    import plotly.offline

    return base64.b64encode(gzip.compress(plotly.offline.get_plotlyjs().encode(), 9, mtime=0)).decode()


def _json_script(element_id: str, data: str) -> str:
    """``data`` (JSON text) in a non-executed script element; ``</`` escaped so it cannot close the element."""
    escaped = data.replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{escaped}</script>'


def render_report(name: str, storage: str | Storage, *, importance_method: str = "fanova") -> str:
    """The report of study ``name`` as one HTML string (plotly.js inline, compressed)."""
    from lmtune.analysis.plots import study_figures

    store = get_storage(storage, read_only=True)
    # Each next() starts a step and marks the previous one done.
    progress = track(["read trials", "importance", "plots", "page"], f"building the report of {name}")
    next(progress)
    history = read_history(name, store)
    final = load_final_evaluation(name, store)
    result = load_final_result(name, store)
    next(progress)
    results, errors = [], []
    shortfall = importance_shortfall(history)
    if shortfall is not None:
        errors.append(shortfall)
    else:
        for method in dict.fromkeys([importance_method, "marginal"]):
            try:
                results.append(importance(history, method))
            except LmtuneError as exc:
                errors.append(str(exc))
    next(progress)
    figures = study_figures(history, results[0] if results else None)
    figures_json = "{" + ",".join(f"{json.dumps(k)}:{fig.to_json()}" for k, fig in figures.items()) + "}"
    plot_html = "\n".join(f'<div class="plot" id="plot-{key}"></div>' for key in figures)
    next(progress)
    title = f"lmtune report: {name}"
    sections = {
        "summary": ("Summary", _summary(name, store.url, history, final, result)),
        "final-evaluation": ("Final evaluation", _final_section(final, result)),
        "plots": ("Plots", plot_html),
        "importance": ("Importance", _importance_section(results, errors)),
        "trials": ("Trials", _trials_section(history)),
    }
    nav = " ".join(f'<a href="#{key}">{_e(heading)}</a>' for key, (heading, _) in sections.items())
    body = "\n".join(
        f'<section id="{key}"><h2>{_e(heading)}</h2>\n{content}\n</section>'
        for key, (heading, content) in sections.items()
    )
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{_e(title)}</h1>\n<p class="note">generated {generated}</p>\n<nav>{nav}</nav>\n{body}\n'
        f'<script type="application/octet-stream" id="plotly-gzip">{_packed_plotly()}</script>\n'
        f"{_json_script('figures', figures_json)}\n<script>{LOADER}</script>\n"
        "</body>\n</html>\n"
    )
    next(progress, None)
    return page


def build_report(name: str, storage: str | Storage, output: str | Path, **options: Any) -> Path:
    """Write the report of study ``name`` to ``output`` (one self-contained HTML file)."""
    output = Path(output)
    if not output.parent.is_dir():
        raise ConfigError(f"output: folder {str(output.parent)!r} does not exist")
    output.write_text(render_report(name, storage, **options), encoding="utf-8")
    logger.info("wrote the report of %s to %s", name, output)
    return output
