"""The final evaluation picks the configuration with the better mean, not the luckiest single run."""

from __future__ import annotations

import numpy as np
import pytest

import lmtune
from lmtune.analysis.evaluate import (
    FinalEvaluation,
    bootstrap_interval,
    classification_test_result,
    confusion_matrix,
    final_evaluation,
    load_final_evaluation,
    most_confident_errors,
    t_interval,
)
from lmtune.exceptions import ConfigError
from lmtune.samplers import RandomSampler

# True mean accuracy of each configuration, and the noise each seed adds. With seed 0 (the search) "lucky" looks
# best (0.80 + 0.10); on fresh seeds "steady" is better on average.
TRUE_MEAN = {"lucky": 0.80, "steady": 0.85, "poor": 0.60}
NOISE = {
    ("lucky", 0): 0.10,
    ("lucky", 1): 0.01,
    ("lucky", 2): -0.02,
    ("lucky", 3): 0.0,
    ("steady", 0): 0.0,
    ("steady", 1): -0.01,
    ("steady", 2): 0.01,
    ("steady", 3): 0.0,
}


class Objective:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, trial: lmtune.Trial) -> float:
        params = trial.params
        self.calls.append(params)
        seed = params.get("seed", 0)
        return TRUE_MEAN[params["config"]] + NOISE.get((params["config"], seed), 0.0)


@pytest.fixture
def searched() -> lmtune.Study:
    study = lmtune.create_study(
        direction="maximize",
        sampler=RandomSampler(seed=0),
        space={"config": {"type": "categorical", "choices": list(TRUE_MEAN)}},
    )
    for config in TRUE_MEAN:
        study.enqueue({"config": config})
    study.optimize(Objective(), n_trials=3)
    assert study.best_params == {"config": "lucky"}
    return study


def test_chooses_the_better_mean_not_the_luckiest_run(searched: lmtune.Study) -> None:
    objective = Objective()
    tested: list[dict] = []

    def test(params: dict, runs: list) -> float:
        tested.append(params)
        assert [r.params["seed"] for r in runs] == [1, 2, 3]
        return 0.84

    result = final_evaluation(searched, objective, top_k=2, seeds=3, test=test)
    assert [c.params["config"] for c in result.candidates] == ["lucky", "steady"]
    assert result.best.params == {"config": "steady"}
    assert result.best.mean == pytest.approx(0.85)
    assert result.candidates[0].search_value == pytest.approx(0.90)
    assert result.candidates[0].mean == pytest.approx(0.80 + (0.01 - 0.02 + 0.0) / 3)
    assert tested == [{"config": "steady"}]  # the test split is touched once, for the chosen one
    assert len(objective.calls) == 6
    assert result.test is not None and result.test.score == 0.84
    assert len(searched.trials) == 3  # the searched study is not modified


def test_rerunning_resumes_and_the_summary_is_stored(searched: lmtune.Study) -> None:
    first = final_evaluation(searched, Objective(), top_k=2, seeds=[1, 2])
    again_objective = Objective()
    again = final_evaluation(searched, again_objective, top_k=2, seeds=[1, 2])
    assert again_objective.calls == []
    assert again == first
    stored = load_final_evaluation(searched.study_name, searched.storage)
    assert stored == first
    assert FinalEvaluation.from_dict(first.to_dict()) == first
    assert load_final_evaluation("nope", searched.storage) is None


def test_folds_are_passed_to_the_objective(searched: lmtune.Study) -> None:
    objective = Objective()
    result = final_evaluation(searched, objective, top_k=1, folds=4)
    assert [c["fold"] for c in objective.calls] == [0, 1, 2, 3]
    assert all(c["folds"] == 4 for c in objective.calls)
    assert result.repeats == {"folds": 4}


def test_bad_settings_are_config_errors(searched: lmtune.Study) -> None:
    with pytest.raises(ConfigError, match="top_k"):
        final_evaluation(searched, Objective(), top_k=0)
    with pytest.raises(ConfigError, match="seeds"):
        final_evaluation(searched, Objective(), seeds=1)
    with pytest.raises(ConfigError, match="folds"):
        final_evaluation(searched, Objective(), folds=1)
    with pytest.raises(ConfigError, match="no COMPLETE trial"):
        final_evaluation(lmtune.create_study(), Objective())


def test_intervals_cover_the_mean() -> None:
    low, high = t_interval([0.8, 0.82, 0.84])
    assert low < 0.82 < high
    assert t_interval([1.0]) == (None, None)
    correct = np.r_[np.ones(80), np.zeros(20)]
    low, high = bootstrap_interval(correct, seed=1)
    assert low < 0.8 < high and high - low < 0.25
    assert bootstrap_interval(correct, seed=1) == (low, high)


def test_classification_error_analysis() -> None:
    labels = ["neg", "pos"]
    gold = [0, 0, 1, 1, 1]
    probs = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.99, 0.01], [0.3, 0.7]]
    texts = ["bad", "meh", "good", "great but sarcastic", "fine"]
    assert confusion_matrix(gold, [0, 1, 1, 0, 1], 2) == [[1, 1], [1, 2]]
    errors = most_confident_errors(gold, probs, texts, labels, k=5)
    assert [e["text"] for e in errors] == ["great but sarcastic", "meh"]
    assert errors[0]["label"] == "pos" and errors[0]["predicted"] == "neg"
    result = classification_test_result(gold, probs, texts, labels)
    assert result.score == pytest.approx(0.6) and result.metric == "accuracy"
    assert result.ci_low <= 0.6 <= result.ci_high
    assert result.details["confusion_matrix"] == [[1, 1], [1, 2]]
