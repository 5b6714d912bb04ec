"""Black-box benchmark: lmtune's samplers beside Optuna (default TPE, GP), Hyperopt TPE and random search.

    .venv/bin/python -m benchmarks.blackbox.run --quick          # under 10 minutes on 2 cores
    .venv/bin/python -m benchmarks.blackbox.run --write-docs     # the full run recorded in docs/benchmarks.md

Every optimiser runs each task for the largest budget; smaller budgets are its prefixes (none of the samplers
plans for the budget on these tasks). Metrics per task, over paired seeds: the anytime log-regret area (mean over
evaluations of log10 of the regret divided by the median regret of a random configuration; lower is better), the
median final regret, the mean rank by area, and a two-sided Wilcoxon signed-rank test of each method's area against
lmtune auto. Peers' results are cached in ``benchmarks/results/blackbox_peers.jsonl`` and reused while their
version is unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from .peers import SLOW_PEERS, peer_version, run
from .tasks import TASKS, make_task

RESULTS = Path(__file__).resolve().parents[1] / "results"
CACHE = RESULTS / "blackbox_peers.jsonl"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
START, END = "<!-- blackbox:start -->", "<!-- blackbox:end -->"
REFERENCE = "lmtune auto"
SETUP = """Setup. Tasks: Branin, Hartmann-6, `mixed` (log float, int, stepped float, categorical) and `conditional`
(sgd/adam branches) from `lmtune.testing.functions`; BBOB f1 (sphere), f8 (Rosenbrock), f15 (Rastrigin), f21
(Gallagher 101 peaks) in 5-D from `coco-experiment` with instance = seed + 1; `minilm-sst2`: the recorded MiniLM
fine-tuning runs at full fidelity (loss = 1 - validation accuracy after 5 epochs of the nearest recorded
configuration; optimum = the best recorded, 0.903); `finetune8` and `lora6` (log-scaled floats with categoricals,
`benchmarks/blackbox/log_categorical.py`, optimum 0). {seeds} seeds, budgets {budgets} (a budget is a prefix of the
longest run: no sampler here plans for its budget on these spaces). Optuna's GPSampler costs about a second or more
per suggestion here, so it runs {slow_seeds} seeds at budget {slow_budget} (cached in
`benchmarks/results/blackbox_peers.jsonl` with the other peers). Columns: log-regret area = mean over evaluations
of log10(regret of the best so far / median regret of a random configuration), floored at -6, lower is better;
final regret = best value - optimum (median over seeds); rank = mean rank of the area among methods with all
seeds; vs auto = two-sided Wilcoxon signed-rank test of the area, paired by seed; s / eval = wall seconds per
evaluation including the optimiser. SMAC3 and HEBO were not run (not installed here)."""


def _limit_threads() -> None:
    """One BLAS / torch thread per worker process: workers run side by side on few cores."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def one_run(peer: str, task_name: str, seed: int, budget: int, prior: str | None = None) -> dict[str, Any]:
    _limit_threads()
    task = make_task(task_name, seed)
    if prior is not None:
        from .priors import with_prior

        task = with_prior(task, prior)
    start = time.perf_counter()
    losses, params = run(peer, task, seed, budget)
    seconds = time.perf_counter() - start
    best = int(np.argmin(losses))
    return {
        "peer": peer,
        "version": peer_version(peer),
        "task": task_name,
        "prior": prior,
        "seed": seed,
        "budget": budget,
        "optimum": task.optimum,
        "losses": losses,
        "extra": task.extra(params[best]) if task.extra else {},
        "seconds": seconds,
    }


def _load_cache() -> dict[tuple[str, str, str, int], dict[str, Any]]:
    cached: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    if CACHE.is_file():
        for line in CACHE.read_text().splitlines():
            record = json.loads(line)
            key = (record["peer"], record["version"], record["task"], record["seed"])
            if key not in cached or record["budget"] > cached[key]["budget"]:
                cached[key] = record
    return cached


def _prefix(record: dict[str, Any], budget: int) -> dict[str, Any]:
    return {**record, "losses": record["losses"][:budget], "budget": budget}


def collect(jobs: list[tuple[Any, ...]], workers: int) -> list[dict[str, Any]]:
    """Run (peer, task, seed, budget) jobs, reusing and extending the peers' cache."""
    cached = _load_cache()
    done: list[dict[str, Any]] = []
    todo = []
    for job in jobs:
        peer, task, seed, budget = job[:4]
        hit = cached.get((peer, peer_version(peer), task, seed))
        if peer in SLOW_PEERS and hit is not None and hit["budget"] >= budget:
            done.append(_prefix(hit, budget))
        else:
            todo.append(job)
    print(f"{len(done)} runs from the cache, {len(todo)} to run", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one_run, *job) for job in todo]
        for k, future in enumerate(futures):
            record = future.result()
            done.append(record)
            if record["peer"] in SLOW_PEERS:
                RESULTS.mkdir(parents=True, exist_ok=True)
                with CACHE.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
            print(
                f"[{k + 1}/{len(todo)}] {record['peer']} {record['task']} seed {record['seed']}: "
                f"{record['seconds']:.1f} s",
                file=sys.stderr,
            )
    return done


# Metrics ------------------------------------------------------------------------------------------------------
_SCALES: dict[str, float] = {}


def regret_scale(task_name: str, seed: int) -> float:
    """The median regret of a uniformly random configuration (1,000 draws): the unit of normalised regret."""
    key = f"{task_name}/{seed}"
    if key not in _SCALES:
        task = make_task(task_name, seed)
        space = task.search_space()
        rng = np.random.default_rng(12345)
        values = [task.loss(space.from_unit(rng.random(len(space)))) for _ in range(1000)]
        _SCALES[key] = max(float(np.median(values)) - task.optimum, 1e-12)
    return _SCALES[key]


def log_regret_curve(record: dict[str, Any]) -> np.ndarray:
    best = np.minimum.accumulate(np.array(record["losses"]))
    regret = np.maximum(best - record["optimum"], 0.0) / regret_scale(record["task"], record["seed"])
    return np.log10(np.maximum(regret, 1e-6))


def _by_peer(records: list[dict[str, Any]], task: str, budget: int) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in records:
        if r["task"] == task and len(r["losses"]) >= budget:
            out.setdefault(r["peer"], {})[r["seed"]] = _prefix(r, budget)
    return out


def _compare(ours: dict[int, float], theirs: dict[int, float]) -> str:
    seeds = sorted(set(ours) & set(theirs))
    if len(seeds) < 5:
        return f"n={len(seeds)}"
    diff = np.array([ours[s] - theirs[s] for s in seeds])
    if np.allclose(diff, 0):
        return "same (p=1)"
    p = float(stats.wilcoxon(diff).pvalue)
    verdict = "same" if p >= 0.05 else ("auto better" if np.median(diff) < 0 else "auto worse")
    return f"{verdict} (p={p:.3f})"


def task_table(
    records: list[dict[str, Any]], task: str, budgets: list[int], peers: list[str]
) -> tuple[str, dict]:
    """A markdown table for one task and the per-budget mean areas by peer."""
    header = ["method", "seeds"]
    for b in budgets:
        header += [f"log-regret area @{b}", f"final regret @{b} (median)", f"rank @{b}", f"vs auto @{b}"]
    if task == "minilm-sst2":
        header.append(f"test acc of best @{budgets[-1]}")
    header.append("s / eval")
    rows: dict[str, list[str]] = {p: [] for p in peers}
    summary: dict[int, dict[str, float]] = {}
    for b in budgets:
        by_peer = _by_peer(records, task, b)
        areas = {
            p: {s: float(log_regret_curve(r).mean()) for s, r in runs.items()} for p, runs in by_peer.items()
        }
        common = sorted(set.intersection(*(set(a) for a in areas.values()))) if areas else []
        ranked = [p for p in peers if p in areas and set(common) <= set(areas[p])]
        ranks: dict[str, float] = {p: 0.0 for p in ranked}
        for s in common:
            order = stats.rankdata([areas[p][s] for p in ranked])
            for p, rank in zip(ranked, order, strict=True):
                ranks[p] += rank / len(common)
        summary[b] = {p: float(np.mean(list(a.values()))) for p, a in areas.items()}
        for p in peers:
            if p not in by_peer:
                rows[p] += ["-", "-", "-", "-"]
                continue
            finals = [r["losses"] and min(r["losses"]) - r["optimum"] for r in by_peer[p].values()]
            rows[p] += [
                f"{summary[b][p]:.2f}",
                f"{np.median(finals):.3g}",
                f"{ranks[p]:.2f}" if p in ranks else "-",
                "-" if p == REFERENCE else _compare(areas.get(REFERENCE, {}), areas[p]),
            ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for p in peers:
        # The largest budget this method ran (slow peers run a smaller one).
        ran = [b for b in budgets if _by_peer(records, task, b).get(p)] or budgets[-1:]
        runs = _by_peer(records, task, ran[-1]).get(p, {})
        n_seeds = str(len(runs)) if ran[-1] == budgets[-1] else f"{len(runs)} (budget {ran[-1]})"
        extra = []
        if task == "minilm-sst2":
            extra = [
                f"{np.mean([r['extra'].get('test_acc', np.nan) for r in runs.values()]):.3f}" if runs else "-"
            ]
        per_eval = [r["seconds"] / max(len(r["losses"]), 1) for r in runs.values()]
        seconds = f"{np.mean(per_eval):.3f}" if per_eval else "-"
        lines.append("| " + " | ".join([p, n_seeds, *rows[p], *extra, seconds]) + " |")
    return "\n".join(lines), summary


def overall(
    summaries: dict[str, dict[int, dict[str, float]]], records: list[dict[str, Any]], budget: int
) -> str:
    """Counts of tasks where auto's mean area beats Optuna's default and random search, and significance."""
    better_optuna = worse_sig = better_random = 0
    for task, summary in summaries.items():
        areas = summary.get(budget, {})
        if REFERENCE not in areas:
            continue
        better_optuna += areas.get("Optuna TPE (default)", np.inf) > areas[REFERENCE]
        better_random += areas.get("random", np.inf) > areas[REFERENCE]
        by_peer = _by_peer(records, task, budget)
        ours = {s: float(log_regret_curve(r).mean()) for s, r in by_peer.get(REFERENCE, {}).items()}
        theirs = {
            s: float(log_regret_curve(r).mean()) for s, r in by_peer.get("Optuna TPE (default)", {}).items()
        }
        worse_sig += _compare(ours, theirs).startswith("auto worse")
    n = len(summaries)
    return (
        f"At budget {budget}: lmtune auto has a better mean anytime log-regret area than Optuna's default TPE on "
        f"{better_optuna} of {n} tasks (significantly worse on {worse_sig}), and than random search on "
        f"{better_random} of {n}."
    )


def timing_table(timings: dict[str, dict[int, float]], sizes: tuple[int, ...]) -> str:
    lines = [
        "| sampler | " + " | ".join(f"{n} trials" for n in sizes) + " |",
        "|" + " --- |" * (len(sizes) + 1),
    ]
    for name, by_size in timings.items():
        cells = [f"{by_size[n]:.1f} ms" if n in by_size else "-" for n in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratio = []
    for ours, theirs in (("lmtune TPE", "Optuna TPE (default)"), ("lmtune GP", "Optuna GP")):
        for n in sizes:
            if n in timings.get(ours, {}) and n in timings.get(theirs, {}):
                ratio.append(f"{theirs} / {ours} at {n}: {timings[theirs][n] / timings[ours][n]:.1f}x")
    return "\n".join(lines) + "\n\nRatios (end to end): " + "; ".join(ratio) + "."


def machine() -> str:
    import optuna

    versions = [f"lmtune {peer_version('lmtune auto').split()[-1]}", f"optuna {optuna.__version__}"]
    for module in ("hyperopt", "numpy", "scipy", "torch", "cocoex"):
        with contextlib.suppress(ImportError):
            versions.append(f"{module} {__import__(module).__version__}")
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.machine()}, Python "
        f"{platform.python_version()}; " + ", ".join(versions)
    )


def write_docs(text: str) -> None:
    """Replace the blackbox section of docs/benchmarks.md (between its markers), or append it."""
    docs = DOCS.read_text() if DOCS.is_file() else "# Benchmarks\n"
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in docs and END in docs:
        docs = docs[: docs.index(START)] + block + docs[docs.index(END) + len(END) :]
    else:
        docs = docs.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(docs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds, budget 50, short timings (<10 min)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100])
    parser.add_argument(
        "--slow-seeds", type=int, default=5, help="seeds for Optuna GP (about 1 s per suggestion)"
    )
    parser.add_argument("--slow-budget", type=int, default=50)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--no-priors", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budgets, args.slow_seeds, args.slow_budget = 3, [50], 0, 50
    command = "    .venv/bin/python -m benchmarks.blackbox.run " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    budget = max(args.budgets)
    peers = ["lmtune auto", "lmtune TPE", "Optuna TPE (default)", "Optuna GP", "Hyperopt TPE", "random"]
    jobs = []
    for task in args.tasks:
        for peer in peers:
            if peer == "Optuna GP":
                jobs += [(peer, task, s, args.slow_budget) for s in range(args.slow_seeds)]
            else:
                jobs += [(peer, task, s, budget) for s in range(args.seeds)]
    started = time.time()
    records = collect(jobs, args.jobs)
    if args.quick:  # quick mode shows cached Optuna GP runs where a full run left them
        cached = _load_cache()
        records += [
            _prefix(r, budget)
            for (p, _, t, s), r in cached.items()
            if p == "Optuna GP" and t in args.tasks and s < args.seeds and r["budget"] >= budget
        ]
    out = [
        "## Black-box samplers (`benchmarks/blackbox/`)",
        "",
        "Command:",
        "",
        command,
        "",
        f"Machine: {machine()}. Wall time of this run: {(time.time() - started) / 60:.0f} min.",
        "",
        SETUP.format(
            seeds=args.seeds,
            budgets=" and ".join(map(str, sorted(args.budgets))),
            slow_seeds=args.slow_seeds,
            slow_budget=args.slow_budget,
        ),
        "",
    ]
    summaries = {}
    for task in args.tasks:
        budgets = sorted(args.budgets)
        if "Optuna GP" in peers and args.slow_budget not in budgets:
            budgets = sorted({*budgets, args.slow_budget})
        table, summary = task_table(records, task, budgets, peers)
        summaries[task] = summary
        out += [f"### {task}", "", table, ""]
    for b in sorted(args.budgets):
        out.append(overall(summaries, records, b))
    out.append("")
    if not args.no_priors:
        from .priors import prior_section

        out += [prior_section(args.seeds, min(args.budgets), args.jobs, collect), ""]
    if not args.no_timing:
        from .timing import time_suggestions

        sizes = (100, 500, 1000, 2000)
        repeats, gp_repeats = (10, 2) if args.quick else (30, 3)
        timings = time_suggestions(sizes, gp_max=500, repeats=repeats, gp_repeats=gp_repeats)
        out += ["### Time per suggestion (8 parameters, median)", "", timing_table(timings, sizes), ""]
    text = "\n".join(out)
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
