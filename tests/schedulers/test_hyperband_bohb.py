"""Hyperband's brackets and BOHB's model on the highest rung with enough results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import lmtune
from lmtune.benchmarking.curves import MultiFidelityHartmann
from lmtune.exceptions import ConfigError
from lmtune.executors.simulated import SimulatedExecutor
from lmtune.samplers import RandomSampler
from lmtune.schedulers import BOHB, Action, Hyperband
from lmtune.schedulers.hyperband import bracket_probabilities
from lmtune.space import FloatDistribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState


def test_bracket_probabilities_follow_hyperbands_trial_counts():
    # 3 rungs, eta 3: synchronous Hyperband starts 9, 5 and 3 trials in its three brackets.
    np.testing.assert_allclose(bracket_probabilities(3, 3), np.array([9, 5, 3]) / 17)


def test_bracket_draws_are_pure_and_cover_all_brackets(record, history):
    hb = Hyperband(5, seed=7)
    trials = [record(n, {}) for n in range(200)]
    draws = [hb.new_bracket(history(*trials[:n])) for n in range(200)]
    assert draws == [Hyperband(5, seed=7).new_bracket(history(*trials[:n])) for n in range(200)]
    assert draws != [Hyperband(5, seed=8).new_bracket(history(*trials[:n])) for n in range(200)]
    counts = np.bincount(draws, minlength=3) / 200
    np.testing.assert_allclose(counts, hb.bracket_probabilities, atol=0.1)


def test_brackets_start_at_their_rung_and_compare_only_within(record, history):
    hb = Hyperband(5, seed=0)  # rungs 1, 3, 5; bracket 1 starts at 3
    strong = [record(n, {1: 0.9, 3: 0.9}, TrialState.PRUNED, bracket=0) for n in range(6)]
    first_in_bracket_1 = record(6, {1: 0.1}, bracket=1)
    assert hb.on_report(first_in_bracket_1, history(*strong, first_in_bracket_1)).action is Action.CONTINUE
    at_rung = record(6, {1: 0.1, 2: 0.1, 3: 0.1}, bracket=1)
    # Alone in bracket 1 it continues, although bracket 0 holds much better values at rung 3.
    assert hb.on_report(at_rung, history(*strong, at_rung)).action is Action.CONTINUE
    better_peers = [record(7 + n, {3: 0.8}, TrialState.COMPLETE, bracket=1) for n in range(2)]
    assert hb.on_report(at_rung, history(*strong, *better_peers, at_rung)).action is Action.STOP


def test_pausing_hyperband_starts_new_trials_at_their_brackets_first_rung(history):
    hb = Hyperband(5, pause=True, seed=3)
    start = hb.next_trial(history())
    assert start.budget == hb.levels[start.bracket]


SPACE = SearchSpace({"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)})


def test_bohb_fits_the_highest_rung_with_enough_results(record, history):
    bohb = BOHB(5, seed=0, min_points_in_model=3)
    trials = [record(n, {1: 0.1 * n}, TrialState.PRUNED, x=0) for n in range(5)]
    trials += [record(5 + n, {1: 0.5, 3: 0.2 * n}, TrialState.RUNNING) for n in range(3)]
    fitted = bohb.model_history(history(*trials, space=SPACE), SPACE)
    values = {r.number: r.value for r in fitted.complete()}
    assert values == {5: 0.0, 6: 0.2, 7: 0.4}  # rung 3 has 3 results; rung 5 has none
    assert {r.number for r in fitted if r.state is TrialState.PRUNED} == set(range(5))
    assert bohb.model_history(history(*trials[:2], space=SPACE), SPACE) is None


def test_bohb_proposals_are_pure_and_inside_the_space(record, history):
    trials = [record(n, {1: float(n % 7)}, TrialState.PRUNED) for n in range(12)]
    trials = [
        t.replace(params={"x": (n * 0.37) % 1, "y": (n * 0.61) % 1}, distributions=dict(SPACE.items()))
        for n, t in enumerate(trials)
    ]
    h = history(*trials, space=SPACE)
    first = BOHB(5, seed=1, random_fraction=0.0).next_trial(h)
    assert first.params == BOHB(5, seed=1, random_fraction=0.0).next_trial(h).params
    assert all(0 <= v <= 1 for v in first.params.values())
    assert first.params != BOHB(5, seed=2, random_fraction=0.0).next_trial(h).params


def _draws(random_draws: str, seed: int, n: int, history) -> np.ndarray:
    """BOHB's first ``n`` proposals (no results yet, so all random draws) as points of the unit square."""
    bohb = BOHB(5, seed=seed, random_draws=random_draws)
    running = [TrialRecord(k, k, TrialState.RUNNING) for k in range(n)]
    return np.array(
        [list(bohb.propose(history(*running[:k], space=SPACE), SPACE).values()) for k in range(n)]
    )


def test_sobol_draws_cover_the_space_more_evenly_than_uniform_ones(history):
    """The first batch parallel workers start comes from the random draws: as Sobol points it leaves fewer gaps
    (lower centred discrepancy) on every seed, and stays a pure function of the seed and the trial number."""
    for seed in range(5):
        sobol, uniform = _draws("sobol", seed, 16, history), _draws("uniform", seed, 16, history)
        assert qmc.discrepancy(sobol) < qmc.discrepancy(uniform)
        assert np.array_equal(sobol, _draws("sobol", seed, 16, history))
    assert not np.array_equal(_draws("sobol", 0, 16, history), _draws("sobol", 1, 16, history))


def test_random_draws_must_be_named():
    with pytest.raises(ConfigError, match="scheduler.random_draws"):
        BOHB(5, random_draws="halton")
    assert BOHB(5).describe()["random_draws"] == "uniform"
    assert BOHB(5, random_draws="sobol").describe()["random_draws"] == "sobol"


def _final_regret(scheduler, seed):
    objective = MultiFidelityHartmann(3, "good", seed=seed)
    study = lmtune.create_study(
        "minimize", space=objective.space, sampler=RandomSampler(seed), scheduler=scheduler
    )
    result = SimulatedExecutor(objective, n_workers=2, max_epochs=150).run(study)
    return result.incumbents()[-1].value - objective.best_value


@pytest.mark.parametrize("seed", [0])
def test_bohb_beats_random_search_at_full_budget(seed):
    seeds = range(seed, seed + 4)
    bohb = [_final_regret(BOHB(5, seed=s, n_brackets=1), s) for s in seeds]
    random = [_final_regret(None, s) for s in seeds]
    assert np.mean(bohb) < np.mean(random)
