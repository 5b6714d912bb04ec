"""LmtuneSearchCV takes what RandomizedSearchCV takes, run on scikit-learn's own example pipelines: the text
feature-extraction example (TfidfVectorizer with ngram_range tuples) and SVC on iris with scipy distributions."""

from __future__ import annotations

import csv
import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import loguniform, norm, randint, uniform
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from lmtune.exceptions import ConfigError
from lmtune.integrations.sklearn import LmtuneSearchCV
from lmtune.trial import TrialState


@pytest.fixture(scope="module")
def sentences(shared_dir: Path) -> tuple[list[str], np.ndarray]:
    """400 SST-2 training sentences and their labels."""
    with gzip.open(shared_dir / "data" / "sst2" / "train.tsv.gz", "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:400]
    return [r["sentence"] for r in rows], np.array([int(r["label"]) for r in rows])


# scikit-learn's "Sample pipeline for text feature extraction and evaluation", with its parameter grid.
TEXT_PARAMETERS = {
    "vect__max_df": (0.2, 0.4, 0.6, 0.8, 1.0),
    "vect__min_df": (1, 3, 5, 10),
    "vect__ngram_range": ((1, 1), (1, 2)),  # unigrams or bigrams
    "vect__norm": ("l1", "l2"),
    "clf__alpha": np.logspace(-6, 6, 13),
}


def _text_pipeline() -> Pipeline:
    return Pipeline([("vect", TfidfVectorizer()), ("clf", ComplementNB())])


def test_the_text_example_runs_with_tuple_choices(
    sentences: tuple[list[str], np.ndarray], artifacts: Path
) -> None:
    X, y = sentences
    search = LmtuneSearchCV(_text_pipeline(), TEXT_PARAMETERS, n_iter=8, cv=3, random_state=0).fit(X, y)
    reference = RandomizedSearchCV(_text_pipeline(), TEXT_PARAMETERS, n_iter=3, cv=3, random_state=0).fit(
        X, y
    )
    states = search.cv_results_["state"]
    assert len(states) == 8 and "FAILED" not in states
    assert set(reference.cv_results_) <= set(search.cv_results_)  # scikit-learn's keys, and `state`
    assert all(isinstance(p["vect__ngram_range"], tuple) for p in search.cv_results_["params"])
    assert search.best_params_["vect__ngram_range"] in ((1, 1), (1, 2))
    assert search.best_estimator_.named_steps["vect"].ngram_range == search.best_params_["vect__ngram_range"]
    assert 0.5 < search.best_score_ <= 1.0 and search.refit_time_ > 0
    assert search.predict(X[:5]).shape == (5,)
    rows = [
        f"{rank:>2}  {state:<8}  {score:.3f}  {params}"
        for rank, state, score, params in sorted(
            zip(
                search.cv_results_["rank_test_score"],
                search.cv_results_["state"],
                search.cv_results_["mean_test_score"],
                search.cv_results_["params"],
                strict=True,
            ),
            key=lambda row: row[0],
        )
    ]
    (artifacts / "search-cv-text-example.txt").write_text(
        f"cv_results_ keys: {sorted(search.cv_results_)}\n" + "\n".join(rows) + "\n"
    )


def test_estimators_as_choices(sentences: tuple[list[str], np.ndarray]) -> None:
    X, y = sentences
    choices = [ComplementNB(), LogisticRegression(max_iter=200)]
    search = LmtuneSearchCV(_text_pipeline(), {"clf": choices}, n_iter=4, cv=2, random_state=0).fit(X, y)
    assert {type(p["clf"]) for p in search.cv_results_["params"]} <= {ComplementNB, LogisticRegression}
    assert type(search.best_estimator_.named_steps["clf"]) in (ComplementNB, LogisticRegression)


def test_scipy_distributions_keep_their_support_and_type() -> None:
    X, y = load_iris(return_X_y=True)
    distributions = {
        "C": loguniform(1e-2, 1e2),
        "gamma": uniform(0.01, 0.5),  # [0.01, 0.51]
        "degree": randint(2, 5),  # 2, 3 or 4
        "coef0": norm(0.0, 1.0),
        "kernel": ["rbf", "poly"],
    }
    search = LmtuneSearchCV(SVC(), distributions, n_iter=12, cv=3, random_state=0, scheduler=None).fit(X, y)
    params = search.cv_results_["params"]
    assert len(params) == 12
    assert all(1e-2 <= p["C"] <= 1e2 and 0.01 <= p["gamma"] <= 0.51 for p in params)
    assert all(isinstance(p["degree"], int) and 2 <= p["degree"] <= 4 for p in params)
    assert all(np.isfinite(p["coef0"]) for p in params) and len({p["coef0"] for p in params}) > 6
    assert search.best_score_ > 0.9


def test_distribution_objects_and_study_file_entries_mix() -> None:
    X, y = load_iris(return_X_y=True)
    mixed = {"C": loguniform(1e-2, 1e2), "kernel": {"type": "categorical", "choices": ["rbf", "linear"]}}
    search = LmtuneSearchCV(SVC(), mixed, n_iter=5, cv=3, random_state=0).fit(X, y)
    assert search.best_params_["kernel"] in ("rbf", "linear") and search.best_score_ > 0.9


def test_error_score_raise_raises_the_estimators_own_error() -> None:
    X, y = load_iris(return_X_y=True)
    search = LmtuneSearchCV(LogisticRegression(), {"C": [-1.0]}, n_iter=2, cv=3, error_score="raise")
    with pytest.raises(ValueError, match="C"):
        search.fit(X, y)


def test_error_score_nan_warns_with_the_real_error_and_fails_the_trial() -> None:
    X, y = load_iris(return_X_y=True)
    search = LmtuneSearchCV(
        LogisticRegression(max_iter=500), {"C": [-1.0, 1.0]}, n_iter=6, cv=3, random_state=0, scheduler=None
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
    assert messages and all("InvalidParameterError" in m or "C" in m for m in messages)
    failed = [r for r in search.study_.trials if r.state is TrialState.FAILED]
    assert failed and all("fold 0 failed" in (r.failure_reason or "") for r in failed)
    assert search.best_params_ == {"C": 1.0}


def test_error_score_number_scores_the_failed_fold() -> None:
    X, y = load_iris(return_X_y=True)
    search = LmtuneSearchCV(
        LogisticRegression(max_iter=500),
        {"C": [-1.0]},
        n_iter=1,
        cv=3,
        error_score=0.0,
        scheduler=None,
        refit=False,
    )
    with pytest.warns(FitFailedWarning):
        search.fit(X, y)
    assert search.cv_results_["mean_test_score"][0] == 0.0


def test_refit_callable_and_false() -> None:
    X, y = load_iris(return_X_y=True)
    space = {"C": loguniform(1e-3, 1e2)}

    def lowest_score(results: dict) -> int:
        return int(np.nanargmin(results["mean_test_score"]))

    search = LmtuneSearchCV(SVC(), space, n_iter=5, cv=3, random_state=0, scheduler=None, refit=lowest_score)
    search.fit(X, y)
    assert search.best_index_ == lowest_score(search.cv_results_)
    assert search.best_params_["C"] == search.best_estimator_.C
    unfitted = LmtuneSearchCV(SVC(), space, n_iter=2, cv=3, refit=False).fit(X, y)
    assert not hasattr(unfitted, "best_estimator_")
    with pytest.raises(ConfigError, match="n_iter must be a positive integer"):
        LmtuneSearchCV(SVC(), space, n_iter=0).fit(X, y)
    with pytest.raises(ConfigError, match="error_score"):
        LmtuneSearchCV(SVC(), space, error_score="ignore").fit(X, y)
