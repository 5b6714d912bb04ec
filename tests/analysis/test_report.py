"""The report is one valid HTML file with every section and nothing loaded from the network."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import plotly.offline
import pytest
from click.testing import CliRunner

import lmtune
from lmtune.analysis.evaluate import classification_test_result, final_evaluation
from lmtune.analysis.report import SECTIONS, time_spent
from lmtune.cli import main
from lmtune.samplers import RandomSampler
from lmtune.testing.browser import CHROMIUM, LAUNCH_ARGS
from lmtune.testing.functions import CONDITIONAL_SPACE, conditional

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
URL_ATTRS = {"src", "href", "action", "data", "poster", "srcset", "formaction"}


class Checker(HTMLParser):
    """Checks that tags nest properly and collects ids, scripts and every URL-valued attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in URL_ATTRS and value:
                self.urls.append(value)
            if name == "style" and value and "url(" in value:
                self.urls.append(value)
        if tag == "script":
            self.scripts.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts[-1] += data
        else:
            self.text.append(data)


def _objective(trial: lmtune.Trial) -> float:
    value = conditional(trial)
    for step in range(3):
        trial.report(value + 1.0 / (step + 1), step)
    if trial.number == 7:
        raise ValueError("diverged <nan>")
    return value + 0.01 * trial.params.get("seed", 0)


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'study.db'}"
    study = lmtune.create_study(
        space=CONDITIONAL_SPACE, sampler=RandomSampler(seed=0), storage=url, study_name="demo"
    )
    study.optimize(_objective, n_trials=30)

    def test(params: dict, runs: list) -> lmtune.analysis.evaluate.TestResult:
        return classification_test_result(
            [0, 1, 1, 0],
            [[0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.6, 0.4]],
            ["a <b>", "c", "a sarcastic one", "d"],
            ["neg", "pos"],
        )

    final_evaluation(study, _objective, top_k=2, seeds=2, test=test)
    study.close()
    return url


@pytest.fixture(scope="module")
def report(study_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("out") / "report.html"
    result = CliRunner().invoke(main, ["report", "demo", "--storage", study_db, "-o", str(output)])
    assert result.exit_code == 0, result.output
    return output


def test_report_is_valid_html_with_every_section(report: Path) -> None:
    checker = Checker()
    checker.feed(report.read_text(encoding="utf-8"))
    checker.close()
    assert checker.doctype
    assert checker.errors == [] and checker.stack == []
    assert set(SECTIONS) <= checker.ids
    plot_ids = {
        f"plot-{k}"
        for k in ("history", "intermediate", "parallel", "slice", "contour", "timeline", "importance")
    }
    assert plot_ids <= checker.ids
    text = " ".join(checker.text)
    for expected in (
        "best configuration",
        "test score",
        "GPU time",
        "CPU time",
        "(chosen)",
        "Confusion matrix",
        "a sarcastic one",
        "diverged <nan>",
        "fanova",
        "marginal",
    ):
        assert expected in text


def test_report_loads_nothing_from_outside(report: Path) -> None:
    checker = Checker()
    checker.feed(report.read_text(encoding="utf-8"))
    external = [u for u in checker.urls if not u.startswith("#")]
    assert external == []  # no src=, href= (other than #anchors) or url(...)
    assert "#trials" in checker.urls
    bundle, *figures = checker.scripts
    assert bundle.strip() == plotly.offline.get_plotlyjs().strip()  # plotly.js inline, not from a CDN
    assert len(figures) == 7 and all("http" not in s for s in figures)


def test_report_of_a_missing_study_is_a_clean_error(study_db: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", "nope", "--storage", study_db, "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2 and "nope" in result.output


def test_time_spent_splits_gpu_and_cpu(study_db: str) -> None:
    from lmtune.analysis.records import read_history

    spent = time_spent(read_history("demo", study_db))
    assert spent["total"] > 0 and spent["gpu"] == 0 and spent["cpu"] == pytest.approx(spent["total"])


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (Debian: apt-get install chromium)")
def test_report_renders_offline_in_chromium(report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page()

        def block(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if url.startswith(("file:", "data:", "blob:")):
                route.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(url)
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", block)
        page.goto(report.as_uri())
        page.wait_for_function("document.querySelectorAll('.plot .main-svg').length >= 7", timeout=30_000)
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()
    assert outside == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
