"""Objectives written for Optuna, in the style its documentation shows, run unchanged under lmtune."""

from __future__ import annotations

import optuna
import pytest
import sklearn.datasets
import sklearn.linear_model
import sklearn.model_selection
import sklearn.svm

import lmtune
from lmtune.integrations.optuna import OptunaTrial, optimize, wrap_objective
from lmtune.samplers import RandomSampler, TPESampler
from lmtune.schedulers import MedianStopping


# The objectives below use only Optuna's API, as Optuna's tutorials do; nothing in them knows about lmtune.
def quadratic(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


def iris_sgd(trial):
    iris = sklearn.datasets.load_iris()
    classes = list(set(iris.target))
    train_x, valid_x, train_y, valid_y = sklearn.model_selection.train_test_split(
        iris.data, iris.target, test_size=0.25, random_state=0
    )
    alpha = trial.suggest_float("alpha", 1e-5, 1e-1, log=True)
    clf = sklearn.linear_model.SGDClassifier(alpha=alpha, random_state=0)
    for step in range(40):
        clf.partial_fit(train_x, train_y, classes=classes)
        intermediate_value = 1.0 - clf.score(valid_x, valid_y)
        trial.report(intermediate_value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return 1.0 - clf.score(valid_x, valid_y)


def branching(trial):
    iris = sklearn.datasets.load_iris()
    x, y = iris.data, iris.target
    classifier_name = trial.suggest_categorical("classifier", ["SVC", "SGD"])
    if classifier_name == "SVC":
        svc_c = trial.suggest_float("svc_c", 1e-10, 1e10, log=True)
        classifier_obj = sklearn.svm.SVC(C=svc_c, gamma="auto")
    else:
        max_iter = trial.suggest_int("max_iter", 5, 50, log=True)
        classifier_obj = sklearn.linear_model.SGDClassifier(max_iter=max_iter, tol=None, random_state=0)
    score = sklearn.model_selection.cross_val_score(classifier_obj, x, y, n_jobs=1, cv=3)
    return score.mean()


def test_quadratic_is_minimised_by_lmtune_tpe() -> None:
    values = []
    for seed in range(3):
        study = lmtune.create_study(direction="minimize", sampler=TPESampler(seed=seed))
        study.optimize(wrap_objective(quadratic), n_trials=40)
        values.append(study.best_value)
        assert abs(study.best_params["x"] - 2) < 0.5
    random_values = []
    for seed in range(3):
        study = lmtune.create_study(direction="minimize", sampler=RandomSampler(seed=seed))
        study.optimize(wrap_objective(quadratic), n_trials=40)
        random_values.append(study.best_value)
    assert sum(values) < sum(random_values)


def test_pruning_objective_is_stopped_by_the_lmtune_scheduler() -> None:
    study = lmtune.create_study(
        direction="minimize",
        sampler=TPESampler(seed=0),
        scheduler=MedianStopping(min_resource=5, n_startup_trials=3),
    )
    optimize(study, iris_sgd, n_trials=15)
    states = [t.state for t in study.trials]
    pruned = [t for t in study.trials if t.state is lmtune.TrialState.PRUNED]
    assert pruned, states
    assert all(len(t.intermediate) < 40 for t in pruned)
    assert lmtune.TrialState.COMPLETE in states
    assert all(len(t.intermediate) == 40 for t in study.trials if t.state is lmtune.TrialState.COMPLETE)


def test_conditional_define_by_run_objective_records_only_active_parameters() -> None:
    study = lmtune.create_study(direction="maximize", sampler=TPESampler(seed=1))
    optimize(study, branching, n_trials=12)
    for t in study.trials:
        assert t.state is lmtune.TrialState.COMPLETE
        expected = {"classifier", "svc_c"} if t.params["classifier"] == "SVC" else {"classifier", "max_iter"}
        assert set(t.params) == expected
    assert study.best_value > 0.9


def test_raising_optuna_trial_pruned_prunes_the_trial_and_keeps_its_last_value() -> None:
    def objective(trial):
        trial.report(0.5, 0)
        raise optuna.TrialPruned()

    study = lmtune.create_study()
    optimize(study, objective, n_trials=1)
    (record,) = study.trials
    assert record.state is lmtune.TrialState.PRUNED and record.value == 0.5


def test_report_twice_at_one_step_warns_like_optuna_and_keeps_the_first_value() -> None:
    def objective(trial):
        trial.report(1.0, 0)
        with pytest.warns(UserWarning, match="already reported at step 0"):
            trial.report(2.0, 0)
        trial.set_user_attr("note", "kept")
        assert isinstance(trial, OptunaTrial) and trial.user_attrs == {"note": "kept"}
        return 3.0

    study = lmtune.create_study()
    optimize(study, objective, n_trials=1)
    assert study.trials[0].intermediate == {0: 1.0} and study.trials[0].value == 3.0


def test_multi_objective_returns_fail_with_a_clear_reason() -> None:
    study = lmtune.create_study()
    optimize(study, lambda trial: (trial.suggest_float("x", 0, 1), 1.0), n_trials=1)
    assert study.trials[0].state is lmtune.TrialState.FAILED
    assert "optimise one value" in study.trials[0].failure_reason


def test_trial_study_is_the_lmtune_study() -> None:
    seen = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        if trial.number > 0:
            seen.append((trial.study.study_name, trial.study.best_value, len(trial.study.trials)))
        return x * x

    study = lmtune.create_study(sampler=RandomSampler(seed=0), study_name="with-study")
    optimize(study, objective, n_trials=3)
    assert [name for name, _, _ in seen] == ["with-study"] * 2
    assert seen[-1][1] == min(r.value for r in study.trials[:2]) and seen[-1][2] == 3
