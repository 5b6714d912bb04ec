"""How the rungs are read: BOHB's calibrated view for its model, and ranking a rung by forecast final values."""

from __future__ import annotations

import numpy as np
import pytest

import lmtune
from lmtune.benchmarking.curves import MultiFidelityHartmann
from lmtune.exceptions import ConfigError
from lmtune.executors.simulated import SimulatedExecutor
from lmtune.samplers import RandomSampler
from lmtune.schedulers import BOHB, Action, SuccessiveHalving
from lmtune.schedulers.forecast import MIN_TRAINED, final_forecasts
from lmtune.space import FloatDistribution, SearchSpace
from lmtune.trial import TrialState

SPACE = SearchSpace({"x": FloatDistribution(0.0, 1.0)})


def _full_and_stopped(record, history, final_of, first_values, stopped_values):
    """Trials reaching 5 epochs (rungs 1, 3, 5) with ``final_of(first-rung value)`` at 5, and trials stopped at 1."""
    full = [
        record(n, {1: v, 3: (v + final_of(v)) / 2, 5: final_of(v)}, TrialState.COMPLETE, final_of(v))
        for n, v in enumerate(first_values)
    ]
    start = len(full)
    stopped = [record(start + n, {1: v}, TrialState.PRUNED) for n, v in enumerate(stopped_values)]
    return history(*full, *stopped)


def _model_values(view):
    return {r.number: r.value for r in view if r.state is TrialState.COMPLETE}


def test_the_calibrated_view_maps_every_rung_onto_the_top_rungs_scale(record, history):
    # Maximised; the full budget's value is 2 * (first rung's) + 0.1 on every fully trained trial.
    trials = _full_and_stopped(
        record, history, lambda v: 2 * v + 0.1, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.05, 0.9]
    )
    view = BOHB(5, n_brackets=1, model_rungs="calibrated").model_history(trials, SPACE)
    values = _model_values(view)
    assert view.direction == "minimize"
    # A trial that stopped at the first rung is valued where its line leads (signed: lower is better).
    assert values[6] == pytest.approx(-(2 * 0.05 + 0.1))
    assert values[7] == pytest.approx(-(2 * 0.9 + 0.1))
    assert values[5] == pytest.approx(-(2 * 0.6 + 0.1))
    # The best first-rung value is the model's best point; the ranked ladder puts it below every full trial.
    assert min(values, key=values.get) == 7
    ladder = BOHB(5, n_brackets=1, model_rungs="all").model_history(trials, SPACE)
    assert max((r for r in ladder if r.state is TrialState.COMPLETE), key=lambda r: r.value).number != 7


def test_with_few_pairs_or_a_falling_line_the_calibration_is_a_shift(record, history):
    scheduler = BOHB(5, n_brackets=1, model_rungs="calibrated")
    # Two trials at both rungs (too few for a line): the shift is their mean difference, 0.5.
    live = list(_full_and_stopped(record, history, lambda v: v + 0.5, [0.1, 0.3], [0.2]))
    assert scheduler.rung_calibration(live, 0, 2, history()) == pytest.approx((-0.5, 1.0))
    # A falling line (the first rung ranks them backwards) is not trusted as a line.
    live = list(_full_and_stopped(record, history, lambda v: 1 - v, [0.1, 0.2, 0.3, 0.4], []))
    shift, slope = scheduler.rung_calibration(live, 0, 2, history())
    assert slope == 1.0 and shift == pytest.approx(-np.mean([0.9 - 0.1, 0.8 - 0.2, 0.7 - 0.3, 0.6 - 0.4]))
    # No trial at both rungs: the value as it is.
    live = list(_full_and_stopped(record, history, lambda v: v, [], [0.2, 0.4]))
    assert scheduler.rung_calibration(live, 0, 2, history()) == (0.0, 1.0)


def test_the_calibrated_view_waits_for_enough_results(record, history):
    trials = _full_and_stopped(record, history, lambda v: v, [0.1], [])  # one result; the model needs two
    assert BOHB(5, n_brackets=1, model_rungs="calibrated").model_history(trials, SPACE) is None


def _regret(scheduler, seed, budget=10):
    objective = MultiFidelityHartmann(3, "good", seed=seed)
    study = lmtune.create_study(
        "minimize", space=objective.space, sampler=RandomSampler(seed), scheduler=scheduler
    )
    result = SimulatedExecutor(objective, 1, budget * objective.max_resource).run(study)
    return result.incumbent_at(budget * objective.max_resource).value - objective.best_value


def test_the_calibrated_view_finds_better_configurations_than_the_ranked_ladder():
    def mean_regret(model_rungs):
        return np.mean(
            [_regret(BOHB(5, seed=s, n_brackets=1, model="gp", model_rungs=model_rungs), s) for s in range(6)]
        )

    assert mean_regret("calibrated") < mean_regret("all")


def test_forecasts_rank_a_slow_starter_by_where_its_curve_is_heading(record, history):
    # Minimised; on every finished trial the final value is the 3-epoch value plus twice its change since epoch 1.
    def curve(at_1, at_3):
        return {1: at_1, 3: at_3, 5: at_3 + 2 * (at_3 - at_1)}

    starts = [(0.50, 0.40), (0.60, 0.30), (0.45, 0.41), (0.70, 0.35), (0.52, 0.50), (0.58, 0.38)]
    finished = [record(n, curve(a, b), TrialState.COMPLETE) for n, (a, b) in enumerate(starts)]
    fast = record(10, {1: 0.20, 3: 0.25})  # best now, getting worse
    slow = record(11, {1: 0.80, 3: 0.33})  # behind now, falling fast
    trials = history(*finished, fast, slow, direction="minimize")
    forecasts = final_forecasts(list(trials), 3, 1, 5, trials)
    assert forecasts is not None
    assert forecasts[11] == pytest.approx(0.33 + 2 * (0.33 - 0.80))
    assert forecasts[11] < forecasts[10]
    # With rank_by="forecast" the slow starter continues at rung 3 and the fast one stops; by value, the reverse.
    by_forecast = SuccessiveHalving(5, rank_by="forecast")
    by_value = SuccessiveHalving(5)
    assert by_forecast.on_report(slow, trials).action is Action.CONTINUE
    assert by_forecast.on_report(fast, trials).action is Action.STOP
    assert by_value.on_report(fast, trials).action is Action.CONTINUE


def test_no_forecast_until_it_predicts_better_than_the_value(record, history):
    # The final value is the 3-epoch value itself: the gain only adds noise, so the forecast is not trusted.
    rng = np.random.default_rng(0)
    finished = [
        record(n, {1: float(v + g), 3: float(v), 5: float(v)}, TrialState.COMPLETE)
        for n, (v, g) in enumerate(zip(rng.random(8), rng.random(8), strict=True))
    ]
    trials = history(*finished, direction="minimize")
    assert final_forecasts(list(trials), 3, 1, 5, trials) is None
    few = history(*finished[: MIN_TRAINED - 1], direction="minimize")
    assert final_forecasts(list(few), 3, 1, 5, few) is None


def test_rank_by_must_be_known():
    with pytest.raises(ConfigError, match="scheduler.rank_by must be one of"):
        SuccessiveHalving(5, rank_by="guess")
    with pytest.raises(ConfigError, match="scheduler.model_rungs must be one of"):
        BOHB(5, model_rungs="every")
