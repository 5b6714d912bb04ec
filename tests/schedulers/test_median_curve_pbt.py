"""Median stopping, the learning-curve rule and PBT on scripted reports."""

from __future__ import annotations

import pytest

from lmtune.schedulers import Action, CurveExtrapolation, MedianStopping, PopulationBasedTraining
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace
from lmtune.trial import Lineage, TrialState


def test_median_stops_below_the_median_of_best_values_so_far(record, history):
    median = MedianStopping(min_resource=1, n_startup_trials=3)
    others = [record(n, {1: v, 2: v + 0.1}, TrialState.COMPLETE) for n, v in enumerate([0.5, 0.6, 0.7])]
    # Medians of the others' best values: 0.6 at step 1, 0.7 at step 2.
    low = record(9, {1: 0.55, 2: 0.65})
    high = record(9, {1: 0.55, 2: 0.75})
    assert median.on_report(low, history(*others, low)).action is Action.STOP
    assert median.on_report(high, history(*others, high)).action is Action.CONTINUE


def test_median_waits_for_startup_trials_and_warmup(record, history):
    others = [record(n, {1: 0.9, 2: 0.9}) for n in range(2)]
    weak = record(9, {1: 0.1, 2: 0.1})
    assert (
        MedianStopping(n_startup_trials=3).on_report(weak, history(*others, weak)).action is Action.CONTINUE
    )
    assert MedianStopping(n_startup_trials=2).on_report(weak, history(*others, weak)).action is Action.STOP
    early = record(9, {1: 0.1})
    assert (
        MedianStopping(3, n_startup_trials=2).on_report(early, history(*others, early)).action
        is Action.CONTINUE
    )


def test_curve_rule_stops_a_flat_poor_curve_and_keeps_a_promising_one(record, history):
    curve = CurveExtrapolation(max_resource=10, min_points=3, probability=0.05)
    best = record(0, {10: 0.9}, TrialState.COMPLETE, value=0.9)
    flat = record(1, {1: 0.50, 2: 0.51, 3: 0.51, 4: 0.52})
    rising = record(2, {1: 0.60, 2: 0.75, 3: 0.83, 4: 0.87})
    assert curve.on_report(flat, history(best, flat)).action is Action.STOP
    assert curve.on_report(rising, history(best, rising)).action is Action.CONTINUE
    assert curve.chance_to_beat(rising, history(best, rising)) > curve.chance_to_beat(
        flat, history(best, flat)
    )
    too_short = record(3, {1: 0.1, 2: 0.1})
    assert curve.on_report(too_short, history(best, too_short)).action is Action.CONTINUE
    assert curve.on_report(flat, history(flat)).action is Action.CONTINUE  # nothing reached max yet


SPACE = SearchSpace(
    {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "layers": IntDistribution(1, 8),
        "act": CategoricalDistribution(["relu", "gelu"]),
    }
)


def test_pbt_stops_the_bottom_quantile_at_perturbation_steps(record, history):
    pbt = PopulationBasedTraining(max_resource=6, population_size=4, perturbation_interval=2, quantile=0.25)
    trials = [record(n, {1: 0.1, 2: v}) for n, v in enumerate([0.4, 0.8, 0.6, 0.2])]
    h = history(*trials)
    assert [pbt.on_report(t, h).action for t in trials] == [Action.CONTINUE] * 3 + [Action.STOP]
    odd_step = record(3, {1: 0.1})
    assert pbt.on_report(odd_step, history(*trials[:3], odd_step)).action is Action.CONTINUE


def test_pbt_replaces_a_stopped_trial_with_a_perturbed_copy_of_a_top_one(record, history):
    pbt = PopulationBasedTraining(max_resource=6, population_size=4, perturbation_interval=2, seed=5)
    params = [{"lr": 1e-3, "layers": 4, "act": "relu"}, {"lr": 1e-2, "layers": 2, "act": "gelu"}]
    trials = [record(n, {2: v}) for n, v in enumerate([0.4, 0.8, 0.6])]
    trials[1] = trials[1].replace(params=params[1], system_attrs={"pbt_generation": 2})
    trials.append(record(3, {2: 0.2}, TrialState.PRUNED))
    first = pbt.next_trial(history(*trials[:2], space=SPACE))
    assert first.lineage == Lineage(generation=0) and first.inherit_checkpoint_of is None
    start = pbt.next_trial(history(*trials, space=SPACE))
    assert start.lineage == Lineage(generation=3, parent=1, replaces=3, step=2)
    assert start.inherit_checkpoint_of == 1
    # Stored as the keys earlier versions wrote.
    assert start.system_attrs() == {
        "pbt_parent": 1,
        "pbt_replaces": 3,
        "pbt_step": 2,
        "pbt_generation": 3,
        "inherit_checkpoint_of": 1,
        "budget": 6,
    }
    assert start.params != params[1] and SPACE.validate(start.params) == start.params
    assert start == pbt.next_trial(history(*trials, space=SPACE))  # pure
    child = record(4, {}, pbt_replaces=3)
    assert pbt.next_trial(history(*trials, child, space=SPACE)).lineage == Lineage(generation=0)


@pytest.mark.parametrize("seed", range(5))
def test_pbt_explore_stays_in_bounds(seed):
    import numpy as np

    pbt = PopulationBasedTraining(4, resample_probability=0.0, perturb_factors=(0.5, 2.0))
    edge = {"lr": 1e-1, "layers": 8, "act": "gelu"}
    new = pbt.explore(edge, SPACE, np.random.default_rng(seed))
    assert SPACE.validate(new) == new and new["act"] == "gelu"
