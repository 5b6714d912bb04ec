"""End to end: the dashboard command serves a study another process is writing, in a real headless Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lmtune.testing.browser import CHROMIUM, LAUNCH_ARGS

WRITER = """
import sys, time, lmtune
from lmtune.samplers import RandomSampler
study = lmtune.create_study(storage=sys.argv[1], study_name="live", sampler=RandomSampler(seed=0),
                            space={"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                                   "layers": {"type": "int", "low": 1, "high": 4}})
def objective(trial):
    if trial.number == 1:
        raise RuntimeError("CUDA out of memory (simulated)")
    for step in range(3):
        trial.report(trial.params["lr"] * (3 - step), step)
        time.sleep(0.15)
    return trial.params["lr"] * trial.params["layers"]
study.optimize(objective, n_trials=400)
"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install chromium"
)


def _wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _study_has_trials(url: str) -> bool:
    import lmtune.storage

    store = lmtune.storage.get_storage(url)
    try:
        return any(info.name == "live" and info.n_trials >= 3 for info in store.list_studies())
    finally:
        store.close()


def test_dashboard_shows_new_trials_of_a_running_study(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = f"sqlite:///{tmp_path / 'live.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url], env=env, stderr=subprocess.DEVNULL)
    dashboard = None
    try:
        _wait_for(lambda: writer.poll() is None and _study_has_trials(url), 60, "the writer's first trials")
        started = time.monotonic()
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "lmtune.cli", "dashboard", "--storage", url, "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = dashboard.stdout.readline()  # type: ignore[union-attr]
        address = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert address, line
        with urllib.request.urlopen(address.group(0), timeout=10) as answer:
            assert answer.status == 200 and b"lmtune dashboard" in answer.read()
        assert time.monotonic() - started < 10  # GET / answered within 10 s of starting
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            response = page.goto(address.group(0))
            assert response is not None and response.ok
            page.locator("#studies tbody tr", has_text="live").click()
            rows = page.locator("#trials tbody tr")
            expect(rows.first).to_be_visible(timeout=15_000)
            first_seen = int(rows.first.get_attribute("data-number"))  # newest first
            expect(page.locator(f'#trials tbody tr[data-number="{first_seen + 2}"]')).to_be_visible(
                timeout=20_000
            )
            # The two default plots are drawn on canvases by the page, from the server's decimated series.
            expect(page.locator("#plot-history canvas[data-drawn]")).to_be_visible(timeout=15_000)
            expect(page.locator("#plot-intermediate canvas[data-drawn]")).to_be_visible(timeout=15_000)
            assert int(page.locator("#plot-history canvas").get_attribute("data-drawn")) > 0
            expect(page.locator("#plot-intermediate .legend")).to_contain_text("complete")
            assert page.evaluate("typeof Plotly") == "undefined"  # not loaded until a plot needs it
            page.locator('button[data-plot="parallel"]').click()
            expect(page.locator("#plot-parallel .main-svg").first).to_be_visible(timeout=20_000)
            page.screenshot(path=str(tmp_path / "study.png"), full_page=True)

            page.locator('#trials tbody tr[data-number="1"]').click()
            expect(page.locator("#failure")).to_contain_text("CUDA out of memory (simulated)", timeout=10_000)
            page.goto(address.group(0) + "#/study/live/trial/0")
            expect(page.locator("#params")).to_contain_text("layers", timeout=10_000)
            expect(page.locator("#curve .main-svg").first).to_be_visible(timeout=10_000)
            page.screenshot(path=str(tmp_path / "trial.png"))
            browser.close()
        assert (tmp_path / "study.png").stat().st_size > 20_000
    finally:
        for process in (dashboard, writer):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
