"""ASHA: rung levels, the stop form's rank rule, and the pause form's promotions."""

from __future__ import annotations

import pytest

from lmtune.exceptions import ConfigError
from lmtune.schedulers import Action, SuccessiveHalving
from lmtune.schedulers.successive_halving import rung_levels
from lmtune.trial import TrialState


@pytest.mark.parametrize(
    ("low", "high", "eta", "levels"),
    [
        (1, 5, 3, [1, 3, 5]),
        (1, 27, 3, [1, 3, 9, 27]),
        (2, 5, 2, [2, 4, 5]),
        (5, 5, 3, [5]),
        (1, 100, 4, [1, 4, 16, 64, 100]),
    ],
)
def test_rung_levels(low, high, eta, levels):
    assert rung_levels(low, high, eta) == levels


def test_stop_form_keeps_the_top_third_of_each_rung(record, history):
    asha = SuccessiveHalving(max_resource=5)
    trials = []
    expected = {
        0.50: "CONTINUE",
        0.40: "STOP",
        0.60: "CONTINUE",
        0.55: "STOP",
        0.45: "STOP",
        0.58: "CONTINUE",
    }
    # n reports at rung 1 let max(1, n // 3) continue: 1, 1, 1, 1, 1, 2
    for number, (value, action) in enumerate(expected.items()):
        trials.append(record(number, {1: value}))
        decision = asha.on_report(trials[-1], history(*trials))
        assert decision.action.value == action, (number, value)


def test_without_the_first_pass_no_trial_goes_on_for_being_the_best_of_few(record, history):
    # The same reports as above: n // 3 continue, so the first two reporters stop even when best so far.
    asha = SuccessiveHalving(max_resource=5, first_pass=False)
    trials = []
    expected = {0.50: "STOP", 0.40: "STOP", 0.60: "CONTINUE", 0.55: "STOP", 0.45: "STOP", 0.58: "CONTINUE"}
    for number, (value, action) in enumerate(expected.items()):
        trials.append(record(number, {1: value}))
        assert asha.on_report(trials[-1], history(*trials)).action.value == action, (number, value)
    # Higher rungs keep the pass: the first trial to reach 3 epochs earned its place at the first rung.
    climber = record(9, {1: 0.9, 3: 0.1})
    assert asha.on_report(climber, history(*trials, climber)).action is Action.CONTINUE


def test_first_pass_must_be_a_boolean():
    with pytest.raises(ConfigError, match="scheduler.first_pass"):
        SuccessiveHalving(max_resource=5, first_pass="no")


def test_stop_form_decides_only_at_rungs_below_the_top(record, history):
    asha = SuccessiveHalving(max_resource=5)
    others = [record(n, {1: 0.9, 2: 0.9, 3: 0.9, 5: 0.9}) for n in range(6)]
    for step in (2, 4, 5):
        worst = record(9, {s: 0.1 for s in range(1, step + 1)})
        assert asha.on_report(worst, history(*others, worst)).action is Action.CONTINUE
    worst = record(9, {1: 0.1, 2: 0.1, 3: 0.1})
    assert asha.on_report(worst, history(*others, worst)).action is Action.STOP


def test_minimize_direction_ranks_low_values_first(record, history):
    asha = SuccessiveHalving(max_resource=5)
    done = [record(n, {1: v}, TrialState.PRUNED) for n, v in enumerate([0.3, 0.2, 0.4])]
    good, bad = record(3, {1: 0.1}), record(3, {1: 0.5})
    assert asha.on_report(good, history(*done, good, direction="minimize")).action is Action.CONTINUE
    assert asha.on_report(bad, history(*done, bad, direction="minimize")).action is Action.STOP


def test_new_trials_run_to_max_in_stop_form_and_to_the_first_rung_when_pausing(history):
    assert SuccessiveHalving(5).next_trial(history()).budget == 5
    start = SuccessiveHalving(5, pause=True).next_trial(history())
    assert (start.budget, start.resume_number) == (1, None)


def test_pause_form_pauses_at_the_budget(record, history):
    asha = SuccessiveHalving(5, pause=True)
    at_budget = record(0, {1: 0.2}, budget=1)
    assert asha.on_report(at_budget, history(at_budget)).action is Action.PAUSE
    below = record(0, {1: 0.2, 2: 0.3}, budget=3)
    assert asha.on_report(below, history(below)).action is Action.CONTINUE
    top = record(0, {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.3, 5: 0.4}, budget=5)
    assert asha.on_report(top, history(top)).action is Action.CONTINUE


def test_pause_form_promotes_the_best_paused_trial_when_the_rung_has_room(record, history):
    asha = SuccessiveHalving(5, pause=True)
    paused = [record(n, {1: v}, TrialState.PAUSED, budget=1) for n, v in enumerate([0.5, 0.6, 0.4])]
    start = asha.next_trial(history(*paused))
    assert (start.resume_number, start.budget) == (1, 3)
    # Trial 1 was promoted (it runs on): 3 results at rung 1 give room for one, so a new trial starts.
    promoted = record(1, {1: 0.6}, TrialState.RUNNING, budget=3)
    start = asha.next_trial(history(paused[0], promoted, paused[2]))
    assert (start.resume_number, start.budget) == (None, 1)
    # Three more results make room for a second promotion: the best not yet promoted (trial 0).
    more = [record(n, {1: 0.1}, TrialState.PAUSED, budget=1) for n in (3, 4, 5)]
    start = asha.next_trial(history(paused[0], promoted, paused[2], *more))
    assert (start.resume_number, start.budget) == (0, 3)


def test_pause_form_promotes_from_the_highest_rung_first(record, history):
    asha = SuccessiveHalving(9, pause=True)  # rungs 1, 3, 9
    low = [record(n, {1: 0.5 + n / 100}, TrialState.PAUSED, budget=1) for n in range(6)]
    high = [record(6 + n, {1: 0.9, 3: 0.8 + n / 100}, TrialState.PAUSED, budget=3) for n in range(3)]
    start = asha.next_trial(history(*low, *high))
    assert (start.resume_number, start.budget) == (8, 9)
