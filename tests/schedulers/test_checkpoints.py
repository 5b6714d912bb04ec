"""Checkpoints with real folders: paused trials resume from theirs, PBT children copy their parent's, and garbage
collection never deletes what an unfinished or best trial needs."""

from __future__ import annotations

import json
from pathlib import Path

import lmtune
from lmtune.checkpoints import CheckpointBudget, collect_garbage
from lmtune.history import TrialHistory
from lmtune.schedulers import PopulationBasedTraining, SuccessiveHalving
from lmtune.space import FloatDistribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

SPACE = SearchSpace({"x": FloatDistribution(0.0, 1.0)})


def curve(x: float, epoch: int) -> float:
    return (1 - (x - 0.3) ** 2) * (1 - 0.5 / epoch)


def make_objective(calls: list[tuple[int, int, str | None]]):
    """Trains epoch by epoch from the checkpoint in ``trial.resume_from``, saving one after every epoch."""

    def objective(trial):
        state = {"epoch": 0, "value": 0.0}
        if trial.resume_from:
            state = json.loads((Path(trial.resume_from) / "state.json").read_text())
        calls.append((trial.number, state["epoch"], trial.resume_from))
        for epoch in range(state["epoch"] + 1, (trial.budget or 5) + 1):
            state = {"epoch": epoch, "value": curve(trial.params["x"], epoch)}
            (trial.checkpoint_dir / "state.json").write_text(json.dumps(state))
            trial.report(state["value"], epoch)
            if trial.should_stop():
                break
        return state["value"]

    return objective


def test_paused_trials_resume_from_their_checkpoint(tmp_path):
    study = lmtune.create_study(
        "maximize", space=SPACE, seed=0, scheduler=SuccessiveHalving(9, pause=True), checkpoint_root=tmp_path
    )
    calls: list[tuple[int, int, str | None]] = []
    study.optimize(make_objective(calls), n_trials=40)
    resumed = [c for c in calls if c[1] > 0]
    assert len(resumed) >= 5
    for number, start_epoch, resume_from in resumed:
        record = next(r for r in study.trials if r.number == number)
        assert resume_from == record.checkpoint_dir and Path(resume_from).is_dir()
        assert start_epoch in (1, 3)  # the rung it paused at
    for record in study.trials:
        assert sorted(record.intermediate) == list(range(1, len(record.intermediate) + 1))  # nothing re-run
    assert any(r.state is TrialState.COMPLETE and r.last_step == 9 for r in study.trials)
    assert {r.state for r in study.trials} <= {TrialState.PAUSED, TrialState.COMPLETE}


def test_garbage_collection_keeps_paused_and_best_checkpoints(tmp_path):
    study = lmtune.create_study(
        "maximize",
        space=SPACE,
        seed=1,
        scheduler=SuccessiveHalving(9, pause=True),
        checkpoint_root=tmp_path,
        checkpoint_budget=CheckpointBudget(keep_best=1),
    )
    study.optimize(make_objective([]), n_trials=40)
    trials = study.trials
    best = study.best_trial
    complete = [r for r in trials if r.state is TrialState.COMPLETE]
    assert len(complete) >= 2
    for record in trials:
        exists = Path(record.checkpoint_dir).is_dir()
        if record.state is TrialState.PAUSED or record.number == best.number:
            assert exists and not record.system_attrs.get("checkpoint_deleted")
        else:
            assert not exists and record.system_attrs["checkpoint_deleted"] is True


def test_garbage_collection_deletes_pruned_checkpoints_at_once(tmp_path):
    study = lmtune.create_study(
        "maximize",
        space=SPACE,
        seed=2,
        scheduler=SuccessiveHalving(9),
        checkpoint_root=tmp_path,
        checkpoint_budget=CheckpointBudget(keep_best=2),
    )
    study.optimize(make_objective([]), n_trials=25)
    kept = sorted(p.name for p in tmp_path.iterdir())
    ranked = sorted(study.get_trials([TrialState.COMPLETE]), key=lambda r: -r.value)
    assert kept == sorted(Path(r.checkpoint_dir).name for r in ranked[:2])
    assert any(r.state is TrialState.PRUNED for r in study.trials)


def _record(number: int, state: TrialState, value: float | None, root: Path, **attrs) -> TrialRecord:
    return TrialRecord(
        number, number, state, value=value, system_attrs={"checkpoint_dir": str(root / f"t{number}"), **attrs}
    )


def test_plan_respects_the_byte_budget_but_never_drops_needed_checkpoints(tmp_path):
    records = [
        _record(0, TrialState.COMPLETE, 0.9, tmp_path),
        _record(1, TrialState.COMPLETE, 0.8, tmp_path),
        _record(2, TrialState.COMPLETE, 0.7, tmp_path),
        _record(3, TrialState.PAUSED, 0.5, tmp_path),
        _record(4, TrialState.PRUNED, 0.95, tmp_path),
        _record(5, TrialState.FAILED, None, tmp_path),
        _record(6, TrialState.RUNNING, None, tmp_path, resume_from=str(tmp_path / "t5")),
    ]
    history = TrialHistory(tuple(records), "maximize")
    sizes = dict.fromkeys(range(7), 100)
    assert CheckpointBudget(keep_best=3).plan(history, sizes) == [4]
    # Finished trials' checkpoints count against max_bytes (0 and 5: 200 bytes; 1 fits, 2 does not), unfinished
    # trials' (3 and 6) come on top.
    assert CheckpointBudget(keep_best=3, max_bytes=300).plan(history, sizes) == [2, 4]
    assert CheckpointBudget(keep_best=3, max_bytes=400).plan(history, sizes) == [4]
    # Over budget already: only optional checkpoints go; the best, paused, running and loaded ones stay.
    assert CheckpointBudget(keep_best=3, max_bytes=10).plan(history, sizes) == [1, 2, 4]


def test_a_running_trial_does_not_cost_a_finished_one_its_place():
    """Whatever finishes while another trial runs, the best ``keep_best`` checkpoints within the budget are the
    ones left: the running trial's checkpoint is needed, but not at the expense of a finished trial's."""
    budget = CheckpointBudget(keep_best=2, max_bytes=200)
    sizes = dict.fromkeys(range(3), 100)
    while_running = TrialHistory(
        (
            _record(0, TrialState.COMPLETE, 0.1, Path("/c")),
            _record(1, TrialState.COMPLETE, 0.2, Path("/c")),
            _record(2, TrialState.RUNNING, None, Path("/c")),
        ),
        "minimize",
    )
    assert budget.plan(while_running, sizes) == []
    finished = TrialHistory(
        while_running.records[:2] + (_record(2, TrialState.COMPLETE, 0.9, Path("/c")),), "minimize"
    )
    assert budget.plan(finished, sizes) == [2]


def test_collect_garbage_removes_real_folders(tmp_path):
    study = lmtune.create_study("maximize", space=SPACE, seed=0, checkpoint_root=tmp_path)
    for value in (0.1, 0.2, 0.3):
        trial = study.ask()
        (trial.checkpoint_dir / "weights.bin").write_bytes(b"0" * 1000)
        study.tell(trial, value)
    assert collect_garbage(study, CheckpointBudget(keep_best=1)) == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial_00002"]


def test_pbt_children_resume_from_a_copy_of_their_parents_checkpoint(tmp_path):
    pbt = PopulationBasedTraining(max_resource=4, population_size=4, perturbation_interval=1, seed=0)
    study = lmtune.create_study("maximize", space=SPACE, seed=3, scheduler=pbt, checkpoint_root=tmp_path)
    calls: list[tuple[int, int, str | None]] = []
    study.optimize(make_objective(calls), n_trials=12)
    children = [r for r in study.trials if "pbt_parent" in r.system_attrs]
    assert children
    for child in children:
        parent = next(r for r in study.trials if r.number == child.system_attrs["pbt_parent"])
        assert child.system_attrs["resume_from"] == child.checkpoint_dir != parent.checkpoint_dir
        assert child.system_attrs["pbt_generation"] == parent.system_attrs.get("pbt_generation", 0) + 1
        start = next(c for c in calls if c[0] == child.number)
        assert start[1] >= child.system_attrs["pbt_step"]  # it went on from the parent's checkpoint
