"""The report is one valid HTML file with every section and nothing loaded from the network."""

from __future__ import annotations

import base64
import gzip
import json
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
    bundle, figures, loader = checker.scripts
    # plotly.js inline once (compressed), not from a CDN
    assert gzip.decompress(base64.b64decode(bundle)).decode() == plotly.offline.get_plotlyjs()
    assert len(json.loads(figures)) == 7 and "http" not in loader


def test_report_of_a_missing_study_is_a_clean_error(study_db: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", "nope", "--storage", study_db, "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2 and "nope" in result.output


def test_time_spent_splits_gpu_and_cpu(study_db: str) -> None:
    from lmtune.analysis.records import read_history

    spent = time_spent(read_history("demo", study_db))
    assert spent["total"] > 0 and spent["gpu"] == 0 and spent["cpu"] == pytest.approx(spent["total"])


def _render_in_chromium(report: Path, screenshot: Path, plots: int) -> tuple[list[str], int, list[float]]:
    """Open ``report`` at 1,280 px with every non-file request blocked; save a full-page screenshot. Returns the
    blocked URLs, the page's scroll width and the right edge of every plot."""
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
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(report.as_uri())
        page.wait_for_function(
            f"document.querySelectorAll('.plot .main-svg').length >= {plots}", timeout=30_000
        )
        page.screenshot(path=str(screenshot), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        edges = page.evaluate(
            "[...document.querySelectorAll('.plot .main-svg')].map(e => e.getBoundingClientRect().right)"
        )
        browser.close()
    return outside, width, edges


needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Chromium (Debian: apt-get install chromium)"
)


@needs_chromium
def test_report_renders_offline_in_chromium_within_1280_pixels(report: Path, artifacts: Path) -> None:
    outside, width, edges = _render_in_chromium(report, artifacts / "report-1280.png", plots=7)
    assert outside == []
    assert (artifacts / "report-1280.png").stat().st_size > 10_000
    assert width <= 1280 and max(edges) <= 1280


@needs_chromium
def test_report_with_a_saved_model_shows_its_test_score_in_chromium(tmp_path: Path, artifacts: Path) -> None:
    from lmtune.analysis.finish import RESULT_ATTR
    from lmtune.analysis.report import build_report

    url = f"sqlite:///{tmp_path / 'shown.db'}"
    study = _small_study(url, "shown", 4)
    study.set_attr(RESULT_ATTR, {**RESULT, "test_interval": [0.908, 0.951]})
    study.close()
    page = build_report("shown", url, tmp_path / "shown.html")
    outside, width, _ = _render_in_chromium(page, artifacts / "report-saved-model-1280.png", plots=6)
    assert outside == [] and width <= 1280


def _small_study(url: str, name: str, n_trials: int) -> lmtune.Study:
    study = lmtune.create_study(
        space=CONDITIONAL_SPACE, sampler=RandomSampler(seed=0), storage=url, study_name=name
    )
    study.optimize(_checkpointing_objective, n_trials=n_trials)
    return study


def _checkpointing_objective(trial: lmtune.Trial) -> float:
    trial.checkpoint_dir  # noqa: B018 - creates and records the trial's folder, as the fine-tuning runner does
    return _objective(trial)


RESULT = {
    "study": "saved",
    "best_trial": 1,
    "metric": "accuracy",
    "validation": {"accuracy": 0.95, "loss": 0.2},
    "test": {"accuracy": 0.932, "loss": 0.25},
    "output_dir": "checkpoints/saved/best_model",
    "split_sizes": {"train": 4000, "validation": 452, "test": 500},
}


def _text(html: str) -> str:
    checker = Checker()
    checker.feed(html)
    return " ".join(" ".join(checker.text).split())


def test_report_shows_the_saved_models_test_score_from_its_result_file(tmp_path: Path) -> None:
    from lmtune.analysis.finish import with_test_interval
    from lmtune.analysis.report import render_report

    url = f"sqlite:///{tmp_path / 'saved.db'}"
    study = _small_study(url, "saved", 3)
    folder = study.checkpoint_root / "best_model"
    folder.mkdir(parents=True)
    (folder / "lmtune_result.json").write_text(json.dumps(RESULT))  # where `lmtune run` writes it
    study.close()
    text = _text(render_report("saved", url))
    low, high = with_test_interval(RESULT)["test_interval"]
    assert 0.90 < low < 0.932 < high < 0.96
    assert f"test score 0.932 [{low:.4g}, {high:.4g}] (95% interval) (accuracy, 500 test examples)" in text
    assert "saved model checkpoints/saved/best_model" in text
    assert "not evaluated" not in text


def test_report_reads_the_result_stored_with_the_study(tmp_path: Path) -> None:
    from lmtune.analysis.finish import RESULT_ATTR
    from lmtune.analysis.report import render_report

    url = f"sqlite:///{tmp_path / 'stored.db'}"
    study = _small_study(url, "stored", 3)
    study.set_attr(RESULT_ATTR, {**RESULT, "test_interval": [0.9, 0.95]})
    study.close()
    text = _text(render_report("stored", url))
    assert "test score 0.932 [0.9, 0.95]" in text
    assert "Test 0.932 [0.9, 0.95]" in text and "test (evaluated once)" in text  # the final section


def test_report_says_plainly_when_there_is_no_result_and_too_few_trials(tmp_path: Path) -> None:
    from lmtune.analysis.report import render_report

    url = f"sqlite:///{tmp_path / 'none.db'}"
    _small_study(url, "none", 2).close()
    text = _text(render_report("none", url))
    assert "test score none: no final result is stored for this study" in text
    assert "Too few trials for parameter importance: 2 COMPLETE trials for 4 parameters" in text
    assert "0.000 ± 0.000" not in text


def test_report_of_hundreds_of_trials_is_small(tmp_path: Path) -> None:
    from lmtune.analysis.report import render_report

    url = f"sqlite:///{tmp_path / 'many.db'}"
    _small_study(url, "many", 300).close()
    html = render_report("many", url)
    assert len(html.encode()) < 2_500_000  # plotly.js alone is 4.8 MB uncompressed


def test_report_command_prints_the_trials_at_a_glance_and_the_result(tmp_path: Path) -> None:
    from lmtune.analysis.finish import RESULT_ATTR

    url = f"sqlite:///{tmp_path / 'glance.db'}"
    study = _small_study(url, "glance", 6)
    study.set_attr(RESULT_ATTR, {**RESULT, "test_interval": [0.91, 0.95]})
    best = study.best_trial.number
    study.close()
    out = CliRunner().invoke(main, ["report", "glance", "--storage", url, "-o", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if " lmtune" not in line]  # log lines aside
    assert lines[0].split() == ["trial", "value", "reached", "state"]
    assert any(
        line.lstrip().startswith(f"{best} ") and line.endswith("<- best") and "█" in line for line in lines
    )
    assert f"best: trial {best}, validation value" in out.output
    assert "test accuracy: 0.932 [0.910, 0.950]; model saved in checkpoints/saved/best_model" in out.output
    assert lines[-1] == f"wrote {tmp_path / 'r.html'}"
