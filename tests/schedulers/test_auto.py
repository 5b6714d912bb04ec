"""``scheduler: auto``, lmtune's default multi-fidelity strategy, and BOHB on define-by-run objectives."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import lmtune
from lmtune.benchmarking.curves import MultiFidelityHartmann
from lmtune.config import build_spec
from lmtune.exceptions import ConfigError
from lmtune.executors.simulated import SimulatedExecutor
from lmtune.samplers import RandomSampler, TPESampler
from lmtune.schedulers import (
    BOHB,
    Action,
    SuccessiveHalving,
    default_multifidelity_scheduler,
    scheduler_from_config,
)
from lmtune.schedulers.auto import AutoScheduler
from lmtune.schedulers.bohb import centre_point
from lmtune.space import CategoricalDistribution, FloatDistribution, Prior, SearchSpace
from lmtune.trial import TrialState


def test_study_file_and_python_build_the_same_default():
    from_file = build_spec(
        {
            "study": "s",
            "objective": "math:sqrt",
            "scheduler": {"name": "auto", "resource": "epoch", "min_resource": 1, "max_resource": 5},
        },
        Path("s.yaml"),
    ).scheduler
    from_python = default_multifidelity_scheduler(5)
    from_mapping = lmtune.create_study(scheduler={"name": "auto", "max_resource": 5}).scheduler
    assert from_file.describe() == from_python.describe() == from_mapping.describe()
    assert from_python.describe()["n_brackets"] == 1


def test_auto_without_max_resource_names_the_field():
    with pytest.raises(ConfigError, match="scheduler.max_resource is required for scheduler 'auto'"):
        lmtune.create_study(scheduler="auto")


def test_auto_logs_what_it_chose_and_why(caplog):
    with caplog.at_level(logging.INFO, logger="lmtune"):
        scheduler_from_config({"name": "auto", "max_resource": 9})
    message = next(r.getMessage() for r in caplog.records if "scheduler auto" in r.getMessage())
    assert "rungs [1, 3, 9]" in message and "why:" in message and "fully trained" in message


def test_the_first_trial_is_the_prior_mode_or_the_centre():
    space = SearchSpace(
        {
            "lr": FloatDistribution(1e-5, 1e-1, log=True),
            "dropout": FloatDistribution(0.0, 0.5, prior=Prior(0.1, 0.5)),
            "batch": CategoricalDistribution([8, 16, 32, 64, 128]),
            "optimizer": CategoricalDistribution(["adamw", "sgd"]),
        }
    )
    point = centre_point(space)
    assert point == {"lr": pytest.approx(1e-3), "dropout": 0.1, "batch": 32, "optimizer": "adamw"}


def _simulate(scheduler, seed, budget=10, workers=1):
    objective = MultiFidelityHartmann(3, "good", seed=seed)
    study = lmtune.create_study(
        "minimize", space=objective.space, sampler=RandomSampler(seed), scheduler=scheduler
    )
    return SimulatedExecutor(objective, workers, budget * objective.max_resource).run(study), objective


def test_auto_is_deterministic_under_its_seed():
    first, _ = _simulate(default_multifidelity_scheduler(5, seed=3), 3, budget=4, workers=2)
    again, _ = _simulate(default_multifidelity_scheduler(5, seed=3), 3, budget=4, workers=2)
    other, _ = _simulate(default_multifidelity_scheduler(5, seed=4), 3, budget=4, workers=2)
    assert [(e.trial, e.epoch, e.params) for e in first.events] == [
        (e.trial, e.epoch, e.params) for e in again.events
    ]
    assert [e.params for e in first.events] != [e.params for e in other.events]


def test_auto_beats_random_search_with_asha_on_hartmann():
    def regret(scheduler, seed):
        result, objective = _simulate(scheduler, seed)
        return result.incumbent_at(10 * objective.max_resource).value - objective.best_value

    seeds = range(4)
    auto = [regret(default_multifidelity_scheduler(5, seed=s), s) for s in seeds]
    asha = [regret(SuccessiveHalving(5), s) for s in seeds]
    assert np.mean(auto) < np.mean(asha)


def test_budget_aware_top_rung_trains_more_candidates_fully():
    def full_trainings(full_share):
        scheduler = BOHB(5, seed=0, n_brackets=1, model="tpe", full_share=full_share)
        result, objective = _simulate(scheduler, 0)
        return sum(e.epoch == objective.max_resource for e in result.events)

    assert full_trainings(0.5) > full_trainings(0.0)


def _define_by_run(scheduler, sampler, n_trials=24):
    """A define-by-run objective (no declared space) reporting 5 epochs of a noisy quadratic."""

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        value = (x - 0.3) ** 2 + (y - 0.7) ** 2
        for epoch in range(1, 6):
            trial.report(value + 0.5 / epoch, epoch)
            if trial.should_stop():
                return None
        return value

    study = lmtune.create_study(sampler=sampler, scheduler=scheduler)
    study.optimize(objective, n_trials=n_trials)
    return [(r.params["x"], r.params["y"]) for r in study.history()]


def test_bohb_uses_its_model_on_define_by_run_objectives():
    bohb = _define_by_run(BOHB(5, seed=0, n_brackets=1, model="tpe", random_fraction=0.0), TPESampler(seed=0))
    tpe_asha = _define_by_run(SuccessiveHalving(5), TPESampler(seed=0))
    assert bohb != tpe_asha
    # The model's proposals are the trials' parameters once a trial finished (the first one runs the sampler's).
    assert bohb[0] == tpe_asha[0]
    assert (
        _define_by_run(BOHB(5, seed=0, n_brackets=1, model="tpe", random_fraction=0.0), TPESampler(seed=0))
        == bohb
    )


def test_a_rung_that_disagrees_with_the_top_rung_stops_steering_the_model(record, history):
    # Six trials reached the full 5 epochs; their 1-epoch values rank them in the opposite order (misleading)
    # or in the same order (informative). Four more stopped at the first rung.
    def trials(first_rung):
        full = [
            record(n, {1: first_rung(n), 3: n / 10, 5: n / 10}, TrialState.COMPLETE, n / 10) for n in range(6)
        ]
        stopped = [record(n, {1: 0.0}, TrialState.PRUNED) for n in range(6, 10)]
        return history(*full, *stopped)

    misleading, informative = trials(lambda n: -n / 10), trials(lambda n: n / 10)
    scheduler = BOHB(5, seed=0, n_brackets=1, model_rungs="all", min_correlation=0.3)
    assert scheduler.trusted_rungs(misleading) == [1, 2]
    assert scheduler.trusted_rungs(informative) == [0, 1, 2]
    # Left out of the ladder, the trials that stopped at the misleading rung no longer count as bad points.
    space = SearchSpace({"x": FloatDistribution(0.0, 1.0)})
    ladder = scheduler.ladder_history(misleading, space, needed=2)
    assert [r.state for r in ladder if r.number >= 6] == [TrialState.RUNNING] * 4
    assert BOHB(5, n_brackets=1, model_rungs="all").trusted_rungs(misleading) == [0, 1, 2]


def test_min_correlation_out_of_range_names_the_field():
    with pytest.raises(ConfigError, match="scheduler.min_correlation"):
        BOHB(5, min_correlation=2)


def test_while_trials_run_in_parallel_auto_keeps_no_top_rung_share():
    """With one trial running auto behaves as its settings say; with several, as IN_PARALLEL says."""
    from lmtune.history import TrialHistory
    from lmtune.schedulers.auto import AUTO_SETTINGS, IN_PARALLEL
    from lmtune.trial import TrialRecord

    def history(running: int) -> TrialHistory:
        pruned = [TrialRecord(n, n, TrialState.PRUNED, intermediate={1: float(n)}) for n in range(6)]
        busy = [TrialRecord(6 + n, 6 + n, TrialState.RUNNING, intermediate={1: 0.5}) for n in range(running)]
        return TrialHistory(pruned + busy, "minimize")

    auto = default_multifidelity_scheduler(9, seed=0)
    settings = BOHB(9, seed=0, **AUTO_SETTINGS)
    assert auto._needs_full_trainings(history(1)) and settings._needs_full_trainings(history(1))
    assert not auto._needs_full_trainings(history(3)) and settings._needs_full_trainings(history(3))
    assert IN_PARALLEL["full_share"] == 0.0 and auto.describe()["in_parallel"] == IN_PARALLEL


def test_in_parallel_only_the_centre_trial_goes_on_for_being_the_best_of_few(record, history):
    """With several trials running, a trial that is the best of fewer than 3 reports at a rung stops (the centre
    trial excepted); with one running, ASHA's first pass lets it go on."""
    auto = default_multifidelity_scheduler(5, seed=0)
    others = [record(n, {}) for n in range(3, 8)]
    first = record(2, {1: 0.9})
    assert auto.on_report(first, history(first, *others)).action is Action.STOP
    assert auto.on_report(first, history(first)).action is Action.CONTINUE
    centre = record(0, {1: 0.9})
    assert auto.on_report(centre, history(centre, *others)).action is Action.CONTINUE
    # Among 3 reports the best goes on, as in ASHA.
    done = [record(n, {1: 0.1}, TrialState.PRUNED) for n in (1, 8)]
    assert auto.on_report(first, history(first, *done, *others)).action is Action.CONTINUE


def test_in_parallel_the_model_proposes_from_three_results_on(record, history):
    space = SearchSpace({f"x{i}": FloatDistribution(0.0, 1.0) for i in range(4)})
    reported = [record(n, {1: n / 10}, TrialState.PRUNED, params={}) for n in range(3)]
    auto = default_multifidelity_scheduler(5, seed=0)
    # Alone, the model waits for one result more than the parameters (5); with trials running beside, for 3.
    assert auto.model_history(history(*reported, record(3, {})), space) is None
    in_parallel = auto.model_history(history(*reported, record(3, {}), record(4, {})), space)
    assert in_parallel is not None
    assert [r.state for r in in_parallel] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING] * 2


def _early_passers(scheduler) -> set[int]:
    """Trials that went on from the first rung (1 epoch) while it held fewer than 3 reports, 8 workers on
    Hartmann-3."""
    result, _ = _simulate(scheduler, 1, budget=10, workers=8)
    first = [e.trial for e in result.events if e.epoch == 1]
    went_on = {e.trial for e in result.events if e.epoch == 2}
    return {trial for n, trial in enumerate(first, 1) if trial in went_on and n < 3}


def test_with_eight_workers_no_trial_but_the_centre_passes_the_first_rung_before_it_has_three_reports():
    class WithFirstPass(AutoScheduler):
        in_parallel = {"model_rungs": "calibrated", "full_share": 0.0}

    assert _early_passers(default_multifidelity_scheduler(5, seed=1)) <= {0}
    assert _early_passers(WithFirstPass(5, seed=1)) - {0}
