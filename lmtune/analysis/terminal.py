"""A study at a glance in the terminal: one bar per trial (its value, how far it trained, its state), the best
configuration and the test score, printed by ``lmtune report`` beside the path of the HTML page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmtune.analysis.finish import load_final_result
from lmtune.analysis.records import metric_name, param_label, read_history
from lmtune.history import TrialHistory
from lmtune.storage import Storage
from lmtune.trial import TrialState

__all__ = ["study_summary", "terminal_summary"]

BAR_WIDTH = 30  # characters of the longest bar
MAX_ROWS = 40  # trials shown; larger studies show their best ones


def _bar(value: float, low: float, high: float) -> str:
    share = 1.0 if high == low else (value - low) / (high - low)
    return "█" * max(1, round(share * BAR_WIDTH))


def terminal_summary(history: TrialHistory, metric: str, result: Mapping[str, Any] | None) -> str:
    """Plain text (no control codes): a bar per trial scaled between the worst and best values, the step it
    reached and its state, then the best trial and the test score of ``result`` (the saved model's summary)."""
    scored = [
        r for r in history if r.value is not None and r.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    if not scored:
        return "no trial has a value yet"
    sign = -1.0 if history.direction == "minimize" else 1.0
    shown = sorted(scored, key=lambda r: -sign * r.value)[:MAX_ROWS] if len(scored) > MAX_ROWS else scored  # type: ignore[operator]
    values = [sign * r.value for r in scored]  # type: ignore[operator]
    low, high = min(values), max(values)
    best = history.best()
    lines = [f"trial  {metric:<{BAR_WIDTH + 9}} reached   state"]
    for r in sorted(shown, key=lambda r: r.number):
        mark = "  <- best" if best is not None and r.number == best.number else ""
        bar = _bar(sign * r.value, low - 0.1 * (high - low), high)  # type: ignore[operator]
        step = "-" if r.last_step is None else f"step {r.last_step}"
        lines.append(
            f"{r.number:>5}  {bar:<{BAR_WIDTH}} {r.value:>8.4g} {step:<9} {r.state.value.lower()}{mark}"
        )
    if len(scored) > len(shown):
        lines.append(f"       ({len(scored) - len(shown)} more trials in the report)")
    if best is not None:
        params = ", ".join(f"{k}={param_label(v)}" for k, v in best.params.items())
        lines.append(f"best: trial {best.number}, validation {metric} {best.value:.4g} ({params})")
    if result is not None and result.get("metric") in (result.get("test") or {}):
        name = result["metric"]
        interval = result.get("test_interval")
        around = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        lines.append(
            f"test {name}: {result['test'][name]:.4g}{around}; model saved in {result.get('output_dir')}"
        )
    return "\n".join(lines)


def study_summary(name: str, storage: Storage) -> str:
    """:func:`terminal_summary` of study ``name``, read from ``storage``."""
    metric = metric_name(storage.get_study(name).attrs)
    return terminal_summary(read_history(name, storage), metric, load_final_result(name, storage))
