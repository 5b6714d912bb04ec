"""Report build time and size for studies of 100 and 300 trials: lmtune's one-file report beside Optuna's
visualization module writing the same plots (history, intermediate values, parallel coordinates, slices, contour,
importance) as self-contained HTML files, which is what an Optuna user gets offline.

Both studies hold the same trials: the conditional test function of ``lmtune.testing.functions`` (4 parameters,
one conditional) with 5 intermediate values each, sampled at random with seed 0. lmtune's time includes its
importance (fANOVA and marginal), the summary and the trials table; Optuna's includes its fANOVA importance.

    python benchmarks/report_build.py [--trials 100 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import lmtune
from lmtune.samplers import RandomSampler
from lmtune.testing.functions import CONDITIONAL_SPACE, conditional


def _objective(trial: lmtune.Trial) -> float:
    value = conditional(trial)
    for step in range(1, 6):
        trial.report(value * (1 + 1 / step), step)
    return value


def lmtune_report(n_trials: int, folder: Path) -> tuple[float, int, lmtune.Study]:
    from lmtune.analysis.report import build_report

    url = f"sqlite:///{folder / f'lmtune-{n_trials}.db'}"
    study = lmtune.create_study(
        space=CONDITIONAL_SPACE, sampler=RandomSampler(seed=0), storage=url, study_name="bench"
    )
    study.optimize(_objective, n_trials=n_trials)
    start = time.perf_counter()
    path = build_report("bench", url, folder / f"lmtune-{n_trials}.html")
    return time.perf_counter() - start, path.stat().st_size, study


def optuna_plots(study: lmtune.Study, folder: Path) -> tuple[float, int]:
    """The same trials replayed into an Optuna study, then its plots written as HTML files."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    target = optuna.create_study(direction=study.direction)
    for r in study.get_trials([lmtune.TrialState.COMPLETE]):
        distributions = {}
        for name, d in r.distributions.items():
            spec = d.to_dict()
            distributions[name] = (
                CategoricalDistribution(spec["choices"])
                if spec["type"] == "categorical"
                else FloatDistribution(spec["low"], spec["high"], log=spec.get("log", False))
            )
        target.add_trial(
            create_trial(
                params=dict(r.params),
                distributions=distributions,
                value=r.value,
                intermediate_values=dict(r.intermediate),
            )
        )
    from optuna import visualization as vis

    start = time.perf_counter()
    figures = {
        "history": vis.plot_optimization_history(target),
        "intermediate": vis.plot_intermediate_values(target),
        "parallel": vis.plot_parallel_coordinate(target),
        "slice": vis.plot_slice(target),
        "contour": vis.plot_contour(target, params=["lr", "optimizer"]),
        "importance": vis.plot_param_importances(target),
    }
    size = 0
    for key, fig in figures.items():
        path = folder / f"optuna-{len(target.trials)}-{key}.html"
        fig.write_html(path)
        size += path.stat().st_size
    return time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 300])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    print(
        "| trials | lmtune report (s) | lmtune size (MB) | Optuna plots (s) | Optuna size (MB, 6 files) | size ratio |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in args.trials:
            seconds, size, study = lmtune_report(n, folder)
            optuna_seconds, optuna_size = optuna_plots(study, folder)
            print(
                f"| {n} | {seconds:.1f} | {size / 1e6:.2f} | {optuna_seconds:.1f} | {optuna_size / 1e6:.2f} "
                f"| {optuna_size / size:.1f}x |"
            )


if __name__ == "__main__":
    main()
