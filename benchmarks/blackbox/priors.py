"""Priors in the benchmark: lmtune auto with no prior, a good prior and a wrong prior (confidence 0.5 each).

A good prior sits at the optimum; a wrong one far from it. A wrong prior may cost early trials but must not make
the result worse than no prior: the section reports both against no prior with a paired Wilcoxon test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from .tasks import Task

__all__ = ["PRIORS", "prior_section", "with_prior"]

_H6_OPTIMUM = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
PRIORS: dict[str, dict[str, dict[str, Any]]] = {
    "mixed": {
        "good": {"lr": 1e-3, "layers": 4, "dropout": 0.1, "activation": "gelu"},
        "wrong": {"lr": 5e-2, "layers": 8, "dropout": 0.45, "activation": "tanh"},
    },
    "hartmann6": {
        "good": {f"x{i}": v for i, v in enumerate(_H6_OPTIMUM)},
        "wrong": {f"x{i}": round(1.0 - v, 3) for i, v in enumerate(_H6_OPTIMUM)},
    },
    "branin": {"good": {"x": 3.14, "y": 2.3}, "wrong": {"x": -4.5, "y": 1.0}},
}
CONFIDENCE = 0.5


def with_prior(task: Task, which: str) -> Task:
    """``task`` with a prior of confidence 0.5 on every parameter (``which``: ``good`` or ``wrong``)."""
    values = PRIORS[task.name][which]
    space = {
        name: {**spec, "prior": {"value": values[name], "confidence": CONFIDENCE}}
        for name, spec in task.space.items()
    }
    return Task(task.name, space, task.optimum, task.loss, task.extra, task.meta)


def prior_section(seeds: int, budget: int, workers: int, collect: Callable[..., list[dict[str, Any]]]) -> str:
    from .run import log_regret_curve

    jobs = [
        ("lmtune auto", task, s, budget, which)
        for task in PRIORS
        for s in range(seeds)
        for which in (None, "good", "wrong")
    ]
    records = collect(jobs, workers)
    lines = [
        f"### Priors (lmtune auto, budget {budget}, {seeds} seeds, confidence {CONFIDENCE})",
        "",
        "| task | prior | log-regret area | regret after 10 | final regret (median) | vs no prior (area) | vs no prior (final) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in PRIORS:
        curves: dict[str | None, dict[int, np.ndarray]] = {}
        for r in records:
            if r["task"] == task:
                curves.setdefault(r["prior"], {})[r["seed"]] = log_regret_curve(r)
        for which in (None, "good", "wrong"):
            runs = curves.get(which, {})
            seeds_ = sorted(runs)
            area = np.array([runs[s].mean() for s in seeds_])
            early = np.array([runs[s][9] for s in seeds_])
            final = np.array([runs[s][-1] for s in seeds_])
            cells = [f"{area.mean():.2f}", f"{np.median(10**early):.3g}", f"{np.median(10**final):.3g}"]
            for metric in (lambda c: c.mean(), lambda c: c[-1]):
                if which is None:
                    cells.append("-")
                    continue
                base = curves.get(None, {})
                diff = np.array([metric(runs[s]) - metric(base[s]) for s in seeds_ if s in base])
                if len(diff) < 5 or np.allclose(diff, 0):
                    cells.append(f"n={len(diff)}" if len(diff) < 5 else "same (p=1)")
                    continue
                p = float(stats.wilcoxon(diff).pvalue)
                verdict = "same" if p >= 0.05 else ("better" if np.median(diff) < 0 else "worse")
                cells.append(f"{verdict} (p={p:.3f})")
            lines.append(f"| {task} | {which or 'none'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
