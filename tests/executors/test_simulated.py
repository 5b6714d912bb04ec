"""The simulated clock: reproducible replays, time-ordered events across workers, the recorded SST-2 curves."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

import lmtune
from lmtune.benchmarking.curves import MultiFidelityHartmann, RecordedCurves
from lmtune.executors.simulated import SimulatedExecutor
from lmtune.samplers import RandomSampler
from lmtune.schedulers import Hyperband, PopulationBasedTraining, SuccessiveHalving
from lmtune.testing.functions import hartmann6_value
from lmtune.trial import TrialState


def simulate(objective, scheduler, seed, n_workers=4, max_epochs=60):
    study = lmtune.create_study(
        objective.direction, space=objective.space, sampler=RandomSampler(seed), scheduler=scheduler
    )
    return SimulatedExecutor(objective, n_workers, max_epochs).run(study), study


def fingerprint(result):
    return [(e.time, e.worker, e.trial, e.epoch, e.value) for e in result.events]


@pytest.mark.parametrize(
    "make",
    [
        lambda s: Hyperband(5, seed=s),
        lambda s: SuccessiveHalving(5, pause=True),
        lambda s: PopulationBasedTraining(5, population_size=4, seed=s),
    ],
)
def test_same_seed_same_run_and_another_seed_another(make):
    objective = MultiFidelityHartmann(3, "bad", seed=1)
    first, _ = simulate(objective, make(0), seed=0)
    again, _ = simulate(MultiFidelityHartmann(3, "bad", seed=1), make(0), seed=0)
    other, _ = simulate(objective, make(1), seed=1)
    assert fingerprint(first) == fingerprint(again)
    assert fingerprint(first) != fingerprint(other)


def test_events_are_ordered_by_simulated_time_across_workers():
    objective = MultiFidelityHartmann(6, "good", seed=0)
    result, study = simulate(objective, SuccessiveHalving(5), seed=3, n_workers=8, max_epochs=100)
    times = [e.time for e in result.events]
    assert times == sorted(times)
    assert [e.epochs_used for e in result.events] == list(range(1, 101))
    assert len({e.worker for e in result.events}) == 8
    # Each epoch costs 1 + x0 simulated seconds: a trial's k-th report lands k costs after its start.
    per_trial: dict[int, list] = {}
    for event in result.events:
        per_trial.setdefault(event.trial, []).append(event)
    for events in per_trial.values():
        cost = 1 + events[0].params["x0"]
        gaps = np.diff([e.time for e in events])
        np.testing.assert_allclose(gaps, cost)
    assert {r.state for r in study.trials} >= {TrialState.PRUNED, TrialState.COMPLETE}


def test_paused_trials_resume_where_they_stopped_on_the_clock():
    objective = MultiFidelityHartmann(3, "good", seed=0)
    result, study = simulate(objective, SuccessiveHalving(5, pause=True), seed=0, n_workers=2, max_epochs=80)
    epochs: dict[int, list[int]] = {}
    for event in result.events:
        epochs.setdefault(event.trial, []).append(event.epoch)
    for trial_epochs in epochs.values():
        assert trial_epochs == list(range(1, len(trial_epochs) + 1))  # resumed, never retrained
    assert any(len(e) == 5 for e in epochs.values())


def test_hartmann_fidelity_correlation_good_and_bad():
    points = np.random.default_rng(0).random((200, 6))

    def rank_corr(correlation):
        mf = MultiFidelityHartmann(6, correlation, seed=0)
        params = [{f"x{i}": p[i] for i in range(6)} for p in points]
        low = [mf.evaluate(p, 1).value for p in params]
        high = [mf.evaluate(p, 5).value for p in params]
        return spearmanr(low, high).statistic, high

    good, exact = rank_corr("good")
    bad, _ = rank_corr("bad")
    np.testing.assert_allclose(exact, [hartmann6_value(p) for p in points])
    assert good > 0.8 and bad < good - 0.3


def test_recorded_curves_replay_the_file(shared_dir, monkeypatch):
    monkeypatch.setenv("LMTUNE_BENCHMARK_DIR", str(shared_dir / "benchmarks"))
    curves = RecordedCurves()
    with gzip.open(shared_dir / "benchmarks" / "minilm_sst2_curves.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert curves.max_resource == 5 and curves.best_value == pytest.approx(0.903)
    for row in rows[:20]:
        for epoch in (1, 5):
            evaluation = curves.evaluate(row["config"], epoch)
            entry = row["curve"][epoch - 1]
            assert evaluation.value == entry["val_acc"] and evaluation.extra["test_acc"] == entry["test_acc"]
        assert curves.evaluate(row["config"], 2).cost == pytest.approx(
            row["curve"][1]["time_s"] - row["curve"][0]["time_s"]
        )
    result, _ = simulate(curves, Hyperband(5, seed=0), seed=0, n_workers=8, max_epochs=150)
    assert result.incumbents()[-1].value > 0.85


def test_missing_curves_file_is_a_clear_error(tmp_path):
    with pytest.raises(lmtune.ConfigError, match="LMTUNE_BENCHMARK_DIR"):
        RecordedCurves(tmp_path / "absent.jsonl.gz")
