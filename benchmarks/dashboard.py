"""Dashboard responsiveness on a 10,000-trial study, measured in headless Chromium, beside optuna-dashboard.

The study (three parameters, three reported values per trial, some pruned and failed) is written once into a
SQLite file with lmtune and exported trial by trial into an Optuna RDB file, so both dashboards show the same
trials. For each dashboard the script starts its server, then times in Chromium:

* server start: from launching the command until ``GET /`` answers (seconds),
* first load: opening the study page on the cold server until the trial table (lmtune) and the history plot are
  drawn with their data (the plot's legend lists its traces),
* reload: the same on a warm server (median of several reloads),
* new trial (lmtune only): from a trial finishing in the storage until its row shows (the page polls every 1 s).

Run: ``.venv/bin/python benchmarks/dashboard.py [--trials 10000] [--workdir DIR] [--no-peer]`` (``--no-peer``:
lmtune only, for a quick check; the peer column then reads "not run").
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lmtune.testing.browser import CHROMIUM, LAUNCH_ARGS

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 8},
    "activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
}
STUDY = "dashboard-bench"
RELOADS = 5
LOAD_TIMEOUT_S = 120  # a page not drawn by then is reported as "> 120"


def objective(trial: Any) -> float:
    p = trial.params
    loss = (
        abs(math.log10(p["lr"]) + 3)
        + 0.1 * p["layers"]
        + {"relu": 0.2, "gelu": 0.0, "tanh": 0.5}[p["activation"]]
    )
    for step in range(3):
        trial.report(loss + 1.0 / (step + 1), step)
    if trial.number % 10 == 3:
        import lmtune

        raise lmtune.TrialPruned()
    if trial.number % 100 == 7:
        raise RuntimeError("simulated out of memory")
    return loss


def build_lmtune_study(path: Path, n_trials: int) -> str:
    import lmtune
    from lmtune.samplers import RandomSampler

    logging.getLogger("lmtune").setLevel(logging.CRITICAL)  # the simulated failures would log tracebacks
    url = f"sqlite:///{path}"
    study = lmtune.create_study(
        storage=url, study_name=STUDY, sampler=RandomSampler(seed=0), space=SPACE, load_if_exists=True
    )
    missing = n_trials - len(study.trials)
    if missing > 0:
        start = time.perf_counter()
        study.optimize(objective, n_trials=missing, max_failed_trials=None)
        print(f"wrote {missing} trials in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    study.close()
    return url


def export_to_optuna(lmtune_url: str, path: Path) -> str:
    """The same trials in an Optuna RDB storage (parameters, distributions, values, curves, states)."""
    import optuna

    from lmtune.analysis.records import read_history
    from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution

    url = f"sqlite:///{path}"
    if path.exists():
        return url
    history = read_history(STUDY, lmtune_url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna commits each added trial; building the file in memory-backed /dev/shm (where there is one) avoids
    # thousands of disk syncs, and the finished file is moved into place.
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else path.parent
    building = scratch / f"building-{path.name}"
    building.unlink(missing_ok=True)
    study = optuna.create_study(
        storage=f"sqlite:///{building}", study_name=STUDY, direction=history.direction
    )

    def convert(dist: Any) -> Any:
        if isinstance(dist, CategoricalDistribution):
            return optuna.distributions.CategoricalDistribution(dist.choices)
        if isinstance(dist, IntDistribution):
            return optuna.distributions.IntDistribution(dist.low, dist.high, log=dist.log)
        assert isinstance(dist, FloatDistribution)
        return optuna.distributions.FloatDistribution(dist.low, dist.high, log=dist.log)

    states = {
        "COMPLETE": optuna.trial.TrialState.COMPLETE,
        "PRUNED": optuna.trial.TrialState.PRUNED,
        "FAILED": optuna.trial.TrialState.FAIL,
    }
    trials = [
        optuna.trial.create_trial(
            params=dict(r.params),
            distributions={k: convert(d) for k, d in r.distributions.items()},
            value=r.value if r.state.value == "COMPLETE" else None,
            intermediate_values=dict(r.intermediate),
            state=states[r.state.value],
        )
        for r in history
        if r.state.value in states
    ]
    study.add_trials(trials)
    del study
    shutil.move(building, path)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(command: list[str], url: str) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server and return it with the seconds until ``url`` answers."""
    import urllib.request

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return process, time.perf_counter() - start
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}") from None
            time.sleep(0.05)


def timed_load(page: Any, action: Any, ready: str) -> float:
    """Seconds until ``ready`` holds after ``action``; infinite when it does not within LOAD_TIMEOUT_S."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    start = time.perf_counter()
    try:
        action()
        page.wait_for_function(ready, timeout=LOAD_TIMEOUT_S * 1000, polling=20)
    except PlaywrightTimeout:
        return math.inf
    return time.perf_counter() - start


# Ready means data drawn, not an empty frame: a plot's legend lists its traces only once they are drawn.
# lmtune draws its two default plots on canvases and marks each with the number of points drawn.
LMTUNE_READY = (
    "document.querySelectorAll('#trials tbody tr').length > 0 && "
    "Number(document.querySelector('#plot-history canvas')?.dataset.drawn) > 0 && "
    "Number(document.querySelector('#plot-intermediate canvas')?.dataset.drawn) > 0"
)
OPTUNA_READY = "document.querySelectorAll('.main-svg .legend .traces').length > 0"


def measure(browser: Any, url: str, ready: str) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(LOAD_TIMEOUT_S * 1000)
    first = timed_load(page, lambda: page.goto(url), ready)
    reloads = [timed_load(page, page.reload, ready) for _ in range(RELOADS if math.isfinite(first) else 1)]
    page.close()
    result = {"first load": first, "reload": statistics.median(reloads)}
    print(f"{url}: {result}", file=sys.stderr)
    return result


def new_trial_latency(browser: Any, url: str, storage_url: str) -> float:
    import lmtune

    page = browser.new_page()
    page.goto(url)
    page.wait_for_function(LMTUNE_READY, timeout=120_000)
    study = lmtune.load_study(STUDY, storage_url)
    trial = study.ask()
    assert trial is not None
    number = trial.number
    start = time.perf_counter()
    study.tell(trial, 1.0)
    page.wait_for_selector(f'#trials tbody tr[data-number="{number}"]', timeout=30_000)
    elapsed = time.perf_counter() - start
    study.close()
    page.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "lmtune-dashboard-bench",
        help="where the two study databases are kept between runs",
    )
    parser.add_argument("--no-peer", action="store_true", help="measure lmtune only")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.workdir.mkdir(parents=True, exist_ok=True)
    lmtune_url = build_lmtune_study(args.workdir / f"lmtune-{args.trials}.db", args.trials)
    optuna_url = (
        None if args.no_peer else export_to_optuna(lmtune_url, args.workdir / f"optuna-{args.trials}.db")
    )
    results: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        server, started = start_server(
            [sys.executable, "-m", "lmtune.cli", "dashboard", "--storage", lmtune_url, "--port", str(port)],
            base,
        )
        try:
            results["lmtune"] = {
                "server start": started,
                **measure(browser, f"{base}#/study/{STUDY}", LMTUNE_READY),
            }
            results["lmtune"]["new trial shown"] = new_trial_latency(
                browser, f"{base}#/study/{STUDY}", lmtune_url
            )
            print(f"lmtune: {results['lmtune']}", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            server.wait()
        results["optuna-dashboard"] = (
            {} if optuna_url is None else measure_optuna_dashboard(browser, optuna_url)
        )
        browser.close()
    print(
        f"\nDashboard on a {args.trials}-trial study (SQLite), Chromium {_chromium_version()}, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| measure (seconds) | lmtune | optuna-dashboard | lmtune / optuna-dashboard |")
    print("| --- | ---: | ---: | ---: |")
    for key in ("server start", "first load", "reload", "new trial shown"):
        ours, theirs = results["lmtune"].get(key), results["optuna-dashboard"].get(key)
        finite = ours is not None and theirs is not None and math.isfinite(ours) and math.isfinite(theirs)
        ratio = (
            f"{ours / theirs:.2f}"
            if finite and theirs
            else ("< " + f"{ours / LOAD_TIMEOUT_S:.3f}" if ours is not None and theirs == math.inf else "–")
        )
        peer = "not run" if optuna_url is None else _fmt(theirs)
        print(f"| {key} | {_fmt(ours)} | {peer} | {ratio} |")


def measure_optuna_dashboard(browser: Any, optuna_url: str) -> dict[str, float]:
    """Start optuna-dashboard on the exported study and time its page like lmtune's."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    command = [str(Path(sys.executable).parent / "optuna-dashboard"), optuna_url, "--port", str(port)]
    server, started = start_server(command, base + "dashboard")
    try:
        return {"server start": started, **measure(browser, f"{base}dashboard/studies/1", OPTUNA_READY)}
    finally:
        server.terminate()
        server.wait()


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"> {LOAD_TIMEOUT_S}" if math.isinf(value) else f"{value:.2f}"


def _chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return "?"
    match = re.search(r"[\d.]+", out)
    return match.group(0) if match else "?"


if __name__ == "__main__":
    main()
