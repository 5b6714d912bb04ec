"""TransformerClassifier as a scikit-learn estimator, in scikit-learn's searches, and LmtuneSearchCV."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import check_estimator
from transformers import BertConfig, BertTokenizerFast

import lmtune
from lmtune.exceptions import ConfigError
from lmtune.integrations.sklearn import LmtuneSearchCV, TransformerClassifier, default_model_dir
from lmtune.samplers import RandomSampler
from lmtune.space import FloatDistribution

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FILLER = [
    "the",
    "a",
    "movie",
    "film",
    "plot",
    "story",
    "actors",
    "scene",
    "was",
    "is",
    "quite",
    "rather",
    "very",
]
#: Checks that do not apply to an estimator whose input is text (numbers in a 2-D X are read as text).
NOT_FOR_TEXT = {
    "check_classifiers_train": "asks for 83% accuracy on numeric Gaussian blobs; a tiny encoder trained for two "
    "epochs on numbers written as text does not reach it (on text it learns, see the tests below)",
}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *FILLER,
        "excellent",
        "terrible",
        *"0123456789.-e",
        *(f"##{c}" for c in "0123456789.-e"),
    ]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny(tokenizer_dir: Path) -> TransformerClassifier:
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    return TransformerClassifier(
        config, tokenizer=tokenizer_dir, learning_rate=1e-2, epochs=10, batch_size=8, max_length=16
    )


def keyword_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Label 'pos' when the text holds 'excellent', 'neg' when it holds 'terrible'."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.integers(2))
        words = list(rng.choice(FILLER, 6))
        words.insert(int(rng.integers(7)), "excellent" if positive else "terrible")
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


X_TRAIN, Y_TRAIN = keyword_texts(64, 0)
X_TEST, Y_TEST = keyword_texts(64, 1)


def test_defaults_need_no_arguments_and_use_the_bundled_minilm() -> None:
    classifier = TransformerClassifier()
    params = classifier.get_params()
    assert params["model"] is None and params["learning_rate"] == 5e-5 and params["epochs"] == 3
    assert (default_model_dir() / "config.json").is_file()
    assert clone(classifier).get_params() == params


def test_fit_predict_predict_proba_and_score_learn_a_keyword_task(tiny: TransformerClassifier) -> None:
    classifier = clone(tiny).fit(X_TRAIN, Y_TRAIN)
    assert list(classifier.classes_) == ["neg", "pos"]
    probs = classifier.predict_proba(X_TEST)
    assert probs.shape == (64, 2) and np.allclose(probs.sum(axis=1), 1)
    predictions = classifier.predict(X_TEST)
    assert set(predictions) <= {"neg", "pos"}
    assert classifier.score(X_TEST, Y_TEST) >= 0.9
    assert classifier.loss_curve_[-1] < classifier.loss_curve_[0]
    again = clone(tiny).fit(X_TRAIN, Y_TRAIN)
    assert np.allclose(again.predict_proba(X_TEST), probs)  # random_state makes fits repeatable


def test_get_params_set_params_and_clone(tiny: TransformerClassifier) -> None:
    changed = clone(tiny).set_params(learning_rate=0.5, epochs=2)
    assert changed.get_params()["learning_rate"] == 0.5 and tiny.learning_rate == 1e-2
    assert clone(changed).get_params()["epochs"] == 2
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        clone(tiny).set_params(learning_rate=-1).fit(X_TRAIN, Y_TRAIN)


def test_input_errors(tiny: TransformerClassifier) -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        clone(tiny).fit(X_TRAIN[:4], ["pos"] * 4)
    with pytest.raises(ValueError, match="Reshape your data"):
        clone(tiny).fit(np.arange(4.0), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="not a single string"):
        clone(tiny).fit("one text", [0])


def test_grid_search_and_randomized_search_pick_the_learning_rate_that_learns(
    tiny: TransformerClassifier,
) -> None:
    grid = GridSearchCV(tiny, {"learning_rate": [1e-2, 3e-1]}, cv=2).fit(X_TRAIN, Y_TRAIN)
    assert grid.best_params_ == {"learning_rate": 1e-2}
    assert grid.cv_results_["mean_test_score"][0] > grid.cv_results_["mean_test_score"][1]
    assert grid.score(X_TEST, Y_TEST) >= 0.9
    randomized = RandomizedSearchCV(
        make_pipeline(tiny),
        {"transformerclassifier__learning_rate": loguniform(1e-3, 1)},
        n_iter=2,
        cv=2,
        random_state=0,
    ).fit(X_TRAIN, Y_TRAIN)
    assert len(randomized.cv_results_["params"]) == 2


def test_lmtune_search_cv_fine_tunes_end_to_end(tiny: TransformerClassifier) -> None:
    search = LmtuneSearchCV(
        tiny, {"learning_rate": FloatDistribution(1e-3, 3e-1, log=True)}, n_trials=4, cv=2, random_state=0
    ).fit(X_TRAIN, Y_TRAIN)
    results = search.cv_results_
    assert len(results["params"]) == 4 and set(results["state"]) <= {"COMPLETE", "PRUNED"}
    complete = [i for i, s in enumerate(results["state"]) if s == "COMPLETE"]
    assert search.best_score_ == max(results["mean_test_score"][i] for i in complete)
    assert results["rank_test_score"][search.best_index_] == 1
    assert search.predict(X_TEST).shape == (64,) and 0 <= search.score(X_TEST, Y_TEST) <= 1
    assert len(search.study_.trials) == 4


def test_lmtune_search_cv_prunes_by_fold_and_records_unrun_folds_as_nan() -> None:
    X, y = load_iris(return_X_y=True)
    search = LmtuneSearchCV(
        SVC(),
        {"C": {"type": "float", "low": 1e-6, "high": 1e3, "log": True}},
        n_trials=20,
        cv=5,
        random_state=0,
        sampler=RandomSampler(seed=4),
    ).fit(X, y)
    states = search.cv_results_["state"]
    pruned = [i for i, s in enumerate(states) if s == "PRUNED"]
    assert pruned and "COMPLETE" in states
    for i in pruned:
        folds = [search.cv_results_[f"split{f}_test_score"][i] for f in range(5)]
        assert np.isnan(folds[-1])  # its last fold was never fitted
    assert search.best_score_ > 0.9 and search.best_params_["C"] == search.best_estimator_.C
    records = {r.number: r for r in search.study_.trials}
    assert all(
        records[n].state is lmtune.TrialState.PRUNED
        for n in [r.number for r in search.study_.trials if len(r.intermediate) < 5]
    )


def test_lmtune_search_cv_uses_tpe_by_default_and_beats_random_search() -> None:
    X, y = load_iris(return_X_y=True)
    space = {
        "C": {"type": "float", "low": 1e-6, "high": 1e3, "log": True},
        "gamma": {"type": "float", "low": 1e-6, "high": 1e2, "log": True},
    }
    tpe, random = [], []
    for seed in range(3):
        tpe.append(
            LmtuneSearchCV(SVC(), space, n_trials=25, cv=3, random_state=seed, scheduler=None, refit=False)
            .fit(X, y)
            .best_score_
        )
        random.append(
            LmtuneSearchCV(
                SVC(), space, n_trials=25, cv=3, sampler=RandomSampler(seed=seed), scheduler=None, refit=False
            )
            .fit(X, y)
            .best_score_
        )
    assert sum(tpe) >= sum(random)
    with pytest.raises(ConfigError, match="n_trials"):
        LmtuneSearchCV(SVC(), space, n_trials=0).fit(X, y)


@pytest.mark.slow
def test_check_estimator_passes_except_the_checks_that_need_numeric_features(
    tiny: TransformerClassifier,
) -> None:
    estimator = clone(tiny).set_params(epochs=2, max_length=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, expected_failed_checks=NOT_FOR_TEXT, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert failed == set(), failed
    assert xfailed <= set(NOT_FOR_TEXT)
    assert sum(r["status"] == "passed" for r in results) >= 50


@pytest.mark.slow
def test_the_default_minilm_fine_tunes_on_sst2_sentences(shared_dir: Path) -> None:
    from lmtune.nlp.data import read_rows

    rows = read_rows(shared_dir / "data" / "sst2" / "dev.tsv.gz")[:24]
    texts, labels = [r["sentence"] for r in rows], [int(r["label"]) for r in rows]
    classifier = TransformerClassifier(epochs=1, batch_size=8, max_length=32).fit(texts[:16], labels[:16])
    assert classifier.model_.config.num_hidden_layers == 6
    probs = classifier.predict_proba(texts[16:])
    assert probs.shape == (8, 2) and np.allclose(probs.sum(axis=1), 1)
