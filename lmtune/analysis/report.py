"""The HTML report of a study: one self-contained file that opens offline.

Sections: summary (best configuration, validation and test scores, trials by state, time spent), final
evaluation (search, re-evaluated and test scores side by side, error analysis), plots, importance and the
table of trials. plotly.js is inlined once in the page head; nothing is loaded from the network.
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lmtune.analysis.evaluate import FinalEvaluation, load_final_evaluation
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

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 2rem; color: #222; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.chosen td { background: #e8f4e8; font-weight: 600; }
.state-COMPLETE { color: #1f77b4; } .state-PRUNED { color: #ff7f0e; } .state-FAILED { color: #d62728; }
.state-RUNNING { color: #2ca02c; } .state-PAUSED { color: #9467bd; }
.note { color: #666; }
.plot { margin-bottom: 1.5rem; }
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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


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
def _summary(name: str, storage_url: str, history: TrialHistory, final: FinalEvaluation | None) -> str:
    counts = Counter(r.state for r in history)
    states = ", ".join(f"{s.value.lower()} {counts[s]}" for s in TrialState if counts[s]) or "none"
    best = history.best()
    spent = time_spent(history)
    test = "not evaluated (run the final evaluation)"
    if final is not None and final.test is not None:
        test = (
            f"{final.test.score:.6g} {_interval(final.test.ci_low, final.test.ci_high)} ({final.test.metric})"
        )
    rows = [
        ("study", _e(name)),
        ("storage", _e(storage_url)),
        ("direction", _e(history.direction)),
        ("trials", f"{len(history)} ({_e(states)})"),
        ("best trial", "–" if best is None else f"#{best.number}"),
        ("best configuration", "–" if best is None else _params_text(best.params)),
        ("validation score (search)", _fmt(best.value if best else None)),
        ("test score", _e(test)),
        ("trial time", _hours(spent["total"])),
        ("GPU time", _hours(spent["gpu"])),
        ("CPU time", _hours(spent["cpu"])),
    ]
    return _table(["", ""], rows)


def _final_section(final: FinalEvaluation | None) -> str:
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
    rows = []
    for r in history:
        rows.append(
            [
                str(r.number),
                f'<span class="state-{r.state.value}">{r.state.value}</span>',
                _fmt(r.value),
                *(_e(param_label(r.params[n])) if n in r.params else "" for n in names),
                _fmt(r.duration, 4),
                _e(r.worker_id or ""),
                _e(r.failure_reason or ""),
            ]
        )
    return _table(["#", "state", "value", *names, "duration (s)", "worker", "failure reason"], rows)


# Assembly ---------------------------------------------------------------------------------------------------------
def render_report(name: str, storage: str | Storage, *, importance_method: str = "fanova") -> str:
    """The report of study ``name`` as one HTML string (plotly.js inline)."""
    import plotly.offline

    from lmtune.analysis.plots import study_figures

    store = get_storage(storage)
    # Each next() starts a step and marks the previous one done.
    progress = track(["read trials", "importance", "plots", "page"], f"building the report of {name}")
    next(progress)
    history = read_history(name, store)
    final = load_final_evaluation(name, store)
    next(progress)
    results, errors = [], []
    for method in dict.fromkeys([importance_method, "marginal"]):
        try:
            results.append(importance(history, method))
        except LmtuneError as exc:
            errors.append(str(exc))
    next(progress)
    figures = study_figures(history, results[0] if results else None)
    plot_html = "\n".join(
        f'<div class="plot" id="plot-{key}">'
        + fig.to_html(
            full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True}
        )
        + "</div>"
        for key, fig in figures.items()
    )
    next(progress)
    title = f"lmtune report: {name}"
    sections = {
        "summary": ("Summary", _summary(name, store.url, history, final)),
        "final-evaluation": ("Final evaluation", _final_section(final)),
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
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n</head>\n<body>\n'
        f'<h1>{_e(title)}</h1>\n<p class="note">generated {generated}</p>\n<nav>{nav}</nav>\n{body}\n'
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
