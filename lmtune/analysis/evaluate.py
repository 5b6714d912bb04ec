"""Honest final evaluation: re-run the top configurations, choose by the mean, touch the test split once.

The best trial of a search is partly the luckiest one: its validation score is biased upwards by the selection
itself (with noisy scores, the maximum of many draws overstates the true mean). So after the search the ``top_k``
distinct configurations are re-run with fresh seeds (or over k folds, for small datasets), the one with the best
*mean* is chosen, and only that one is evaluated on the untouched test split, with a confidence interval.

The re-runs are trials of a companion study named ``<study>.final`` in the same storage: they are recorded,
resumable (a rerun skips finished runs) and visible in the dashboard, and the searched study is never
modified. The summary is stored as the companion study's ``final_evaluation`` attribute, which the report
reads.

The objective receives each configuration with ``seed`` (or ``fold`` and ``folds``) added to ``trial.params``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lmtune.analysis.progress import track
from lmtune.exceptions import ConfigError, StudyNotFoundError
from lmtune.storage import Storage
from lmtune.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = [
    "FINAL_SUFFIX",
    "Candidate",
    "FinalEvaluation",
    "TestResult",
    "bootstrap_interval",
    "classification_test_result",
    "confusion_matrix",
    "final_evaluation",
    "load_final_evaluation",
    "most_confident_errors",
    "t_interval",
]

FINAL_SUFFIX = ".final"
ATTR = "final_evaluation"
BOOTSTRAP_RESAMPLES = 2000


# Intervals -----------------------------------------------------------------------------------------------------
def t_interval(scores: Sequence[float], confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Student-t interval for the mean of ``scores`` (None with fewer than two scores)."""
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    if len(x) < 2:
        return (None, None)
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))


def bootstrap_interval(
    per_example: Sequence[float], confidence: float = 0.95, seed: int = 0
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of per-example scores (e.g. 1/0 correctness for accuracy)."""
    x = np.asarray(per_example, dtype=float)
    if len(x) == 0:
        return (None, None)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(BOOTSTRAP_RESAMPLES, len(x)))].mean(axis=1)
    tail = (1 - confidence) / 2
    return (float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


# Error analysis --------------------------------------------------------------------------------------------------
def confusion_matrix(gold: Sequence[int], predicted: Sequence[int], n_classes: int) -> list[list[int]]:
    """``matrix[i][j]``: examples of true class i predicted as class j."""
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (np.asarray(gold, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return matrix.tolist()


def most_confident_errors(
    gold: Sequence[int],
    probabilities: np.ndarray | Sequence[Sequence[float]],
    texts: Sequence[str],
    labels: Sequence[Any],
    k: int = 10,
) -> list[dict[str, Any]]:
    """The ``k`` wrong predictions the model was surest of: text, true and predicted label, probability."""
    probs = np.asarray(probabilities, dtype=float)
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(gold))
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    return [
        {
            "index": int(i),
            "text": str(texts[i]),
            "label": labels[gold[i]],
            "predicted": labels[predicted[i]],
            "probability": float(confidence[i]),
        }
        for i in order
    ]


@dataclass(frozen=True)
class TestResult:
    """One evaluation on the test split: the score, its interval, and optional details (e.g. error analysis)."""

    score: float
    ci_low: float | None = None
    ci_high: float | None = None
    n_examples: int | None = None
    metric: str = "score"
    details: Mapping[str, Any] = field(default_factory=dict)


def classification_test_result(
    gold: Sequence[int],
    probabilities: np.ndarray | Sequence[Sequence[float]],
    texts: Sequence[str],
    labels: Sequence[Any],
    *,
    confidence: float = 0.95,
    k_errors: int = 10,
    seed: int = 0,
) -> TestResult:
    """Accuracy with a bootstrap interval, the confusion matrix and the most confidently wrong examples."""
    probs = np.asarray(probabilities, dtype=float)
    predicted = probs.argmax(axis=1)
    correct = (predicted == np.asarray(gold)).astype(float)
    low, high = bootstrap_interval(correct, confidence, seed)
    return TestResult(
        score=float(correct.mean()),
        ci_low=low,
        ci_high=high,
        n_examples=len(correct),
        metric="accuracy",
        details={
            "labels": [str(x) for x in labels],
            "confusion_matrix": confusion_matrix(gold, predicted.tolist(), len(labels)),
            "confident_errors": most_confident_errors(gold, probs, texts, labels, k_errors),
        },
    )


# The evaluation ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One of the top configurations: its search value and its re-run scores (mean, std, t interval)."""

    trial_number: int
    params: dict[str, Any]
    search_value: float
    scores: list[float]
    mean: float
    std: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class FinalEvaluation:
    """The outcome: every candidate, the index of the chosen one, and its test result (if a test was given)."""

    study: str
    direction: str
    repeats: dict[str, Any]
    confidence: float
    candidates: list[Candidate]
    chosen: int
    test: TestResult | None = None

    @property
    def best(self) -> Candidate:
        return self.candidates[self.chosen]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FinalEvaluation:
        test = d.get("test")
        return cls(
            study=d["study"],
            direction=d["direction"],
            repeats=dict(d["repeats"]),
            confidence=float(d["confidence"]),
            candidates=[Candidate(**c) for c in d["candidates"]],
            chosen=int(d["chosen"]),
            test=TestResult(**test) if test else None,
        )


def _top_configurations(study: Study, top_k: int) -> list[TrialRecord]:
    history = study.history()
    seen: set[str] = set()
    top: list[TrialRecord] = []
    for record in history.ranked():
        key = json.dumps(dict(record.params), sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            top.append(record)
        if len(top) == top_k:
            break
    if not top:
        raise ConfigError(f"study {study.study_name!r} has no COMPLETE trial to re-evaluate")
    return top


def _repeats(seeds: int | Sequence[int], folds: int | None) -> list[dict[str, Any]]:
    """The extra parameters of each re-run: fresh seeds 1..n (the search ran seed 0 by default), or folds."""
    if folds is not None:
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ConfigError(f"final_evaluation.folds must be an integer >= 2, but got {folds!r}")
        return [{"fold": f, "folds": folds} for f in range(folds)]
    values = (
        list(range(1, seeds + 1)) if isinstance(seeds, int) and not isinstance(seeds, bool) else list(seeds)
    )
    if len(values) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in values):
        raise ConfigError(
            f"final_evaluation.seeds must be a count >= 2 or a list of at least 2 integer seeds, "
            f"but got {seeds!r}"
        )
    return [{"seed": s} for s in values]


def _companion(study: Study) -> Study:
    from lmtune.study import create_study

    return create_study(
        direction=study.direction,
        storage=study.storage,
        seed=0,
        study_name=study.study_name + FINAL_SUFFIX,
        load_if_exists=True,
        attrs={"final_evaluation_of": study.study_name},
    )


def _run(final: Study, objective: Callable[[Any], Any], params: dict[str, Any]) -> TrialRecord:
    """The COMPLETE run of ``params`` in the companion study, reusing a finished one (resume)."""
    key = json.dumps(params, sort_keys=True, default=str)
    for record in final.get_trials([TrialState.COMPLETE]):
        if json.dumps(dict(record.params), sort_keys=True, default=str) == key:
            return record
    final.enqueue(params)
    trial = final.ask()
    if trial is None:  # pragma: no cover - ask() without max_trials always gives a trial
        raise ConfigError(f"could not start a re-run of {params} in study {final.study_name!r}")
    record = final.run_trial(objective, trial)
    if record.state is not TrialState.COMPLETE or record.value is None:
        raise ConfigError(
            f"re-run of {params} ended {record.state.value}: {record.failure_reason or 'no value'}; "
            f"fix the objective, then run the final evaluation again (finished re-runs are kept)"
        )
    return record


def final_evaluation(
    study: Study,
    objective: Callable[[Any], Any],
    *,
    top_k: int = 3,
    seeds: int | Sequence[int] = 3,
    folds: int | None = None,
    test: Callable[[dict[str, Any], list[TrialRecord]], TestResult | float] | None = None,
    confidence: float = 0.95,
) -> FinalEvaluation:
    """Re-run the ``top_k`` distinct best configurations of ``study`` with each seed (or fold), choose the best
    mean, and call ``test(params, runs)`` once for the chosen configuration (``runs``: its re-run records, e.g. to
    load a checkpoint). The summary is stored with the companion study and returned."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"final_evaluation.top_k must be a positive integer, but got {top_k!r}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, but got {confidence!r}")
    repeats = _repeats(seeds, folds)
    top = _top_configurations(study, top_k)
    final = _companion(study)
    jobs = [(i, {**dict(r.params), **extra}) for i, r in enumerate(top) for extra in repeats]
    runs: dict[int, list[TrialRecord]] = {i: [] for i in range(len(top))}
    try:
        for i, params in track(jobs, f"re-evaluating the top {len(top)} configurations"):
            runs[i].append(_run(final, objective, params))
    finally:
        final.close()
    sign = 1.0 if study.direction == "minimize" else -1.0
    candidates = []
    for i, record in enumerate(top):
        scores = [float(r.value) for r in runs[i]]  # type: ignore[arg-type]
        low, high = t_interval(scores, confidence)
        candidates.append(
            Candidate(
                record.number,
                dict(record.params),
                float(record.value),  # type: ignore[arg-type]
                scores,
                float(np.mean(scores)),
                float(np.std(scores, ddof=1)),
                low,
                high,
            )
        )
    chosen = min(range(len(candidates)), key=lambda i: (sign * candidates[i].mean, i))
    result = None
    if test is not None:
        outcome = test(dict(top[chosen].params), runs[chosen])
        result = outcome if isinstance(outcome, TestResult) else TestResult(score=float(outcome))
    evaluation = FinalEvaluation(
        study=study.study_name,
        direction=study.direction,
        repeats={"seeds": [r["seed"] for r in repeats]} if folds is None else {"folds": folds},
        confidence=confidence,
        candidates=candidates,
        chosen=chosen,
        test=result,
    )
    final.set_attr(ATTR, evaluation.to_dict())
    return evaluation


def load_final_evaluation(study_name: str, storage: Storage) -> FinalEvaluation | None:
    """The stored final evaluation of ``study_name``, or None when none was run."""
    try:
        info = storage.get_study(study_name + FINAL_SUFFIX)
    except StudyNotFoundError:
        return None
    data = info.attrs.get(ATTR)
    return FinalEvaluation.from_dict(data) if data else None
