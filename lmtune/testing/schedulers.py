"""The scheduler conformance suite: checks every scheduler, built in or plugged in, must pass.

Subclass :class:`SchedulerConformance` in a test module and set ``scheduler_class`` (and ``scheduler_options``)::

    class TestMyScheduler(SchedulerConformance):
        scheduler_class = MyScheduler
        scheduler_options = {"max_resource": 9}

pytest then collects the ``test_*`` methods. Each check replays the same report streams: a study with a seeded
random sampler runs on the simulated clock (:class:`lmtune.executors.simulated.SimulatedExecutor`, several workers,
so reports arrive interleaved as on a cluster) over a synthetic multi-fidelity function, and every decision the
scheduler takes is checked as it is taken. The suite needs nothing but lmtune (pytest is not imported).
"""

from __future__ import annotations

import inspect
import json
import pickle
from typing import Any, ClassVar

from lmtune.benchmarking.curves import MultiFidelityHartmann
from lmtune.executors.simulated import SimulatedExecutor
from lmtune.history import TrialHistory
from lmtune.samplers import RandomSampler
from lmtune.schedulers.base import Action, Decision, Scheduler, TrialStart
from lmtune.trial import TrialRecord, TrialState

__all__ = ["SchedulerConformance"]

Trace = list[tuple[Any, ...]]


class _Checked(Scheduler):
    """Passes every call to ``inner``, checks that the answer is legal, and writes it down."""

    def __init__(self, inner: Scheduler, max_resource: int) -> None:
        self.inner, self.max_resource = inner, max_resource
        self.trace: Trace = []

    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        decision = self.inner.on_report(trial, history)
        assert isinstance(decision, Decision) and isinstance(decision.action, Action), decision
        assert isinstance(decision.reason, str), decision
        if decision.action is not Action.CONTINUE:
            assert decision.reason, f"trial {trial.number}: {decision.action.value} without a reason"
        assert decision == self.inner.on_report(trial, history), "on_report is not a pure function"
        self.trace.append(("report", trial.number, trial.last_step, decision.action.value))
        return decision

    def next_trial(self, history: TrialHistory) -> TrialStart:
        start = self.inner.next_trial(history)
        assert isinstance(start, TrialStart), start
        assert start.budget is None or 1 <= start.budget <= self.max_resource, start
        if start.resume_number is not None:
            paused = [r for r in history if r.number == start.resume_number]
            assert paused and paused[0].state is TrialState.PAUSED, (
                f"resumes a trial that is not PAUSED: {start}"
            )
        if start.params and history.space is not None:
            history.space.validate(start.params, partial=True)
        json.dumps(start.system_attrs())  # stored with the trial: must be JSON
        assert start == self.inner.next_trial(history), "next_trial is not a pure function"
        self.trace.append(
            ("start", start.budget, start.resume_number, json.dumps(start.params, sort_keys=True))
        )
        return start


class SchedulerConformance:
    """The checks. Set ``scheduler_class`` (importable by module and name) and ``scheduler_options``; a ``seed``
    keyword, where the scheduler takes one, is given by the suite. ``max_resource`` is the fidelity of the replayed
    function (epochs); give the scheduler the same."""

    scheduler_class: ClassVar[type[Scheduler]]
    scheduler_options: ClassVar[dict[str, Any]] = {}
    max_resource: ClassVar[int] = 9
    workers: ClassVar[int] = 3
    epochs: ClassVar[int] = 80  # epochs trained in all per replay

    def make_scheduler(self, seed: int = 0) -> Scheduler:
        options = dict(self.scheduler_options)
        if "seed" in inspect.signature(self.scheduler_class.__init__).parameters:
            options["seed"] = seed
        return self.scheduler_class(**options)

    def replay(self, scheduler: Scheduler, sampler_seed: int = 0) -> tuple[Trace, list[TrialRecord]]:
        """Every decision of ``scheduler`` on a replayed study, and the study's trials at the end."""
        import lmtune

        objective = MultiFidelityHartmann(dim=3, max_resource=self.max_resource, seed=sampler_seed)
        checked = _Checked(scheduler, self.max_resource)
        study = lmtune.create_study(
            space=objective.space, sampler=RandomSampler(seed=sampler_seed), scheduler=checked
        )
        result = SimulatedExecutor(objective, n_workers=self.workers, max_epochs=self.epochs).run(study)
        trace = checked.trace + [("epoch", e.trial, e.epoch, e.worker) for e in result.events]
        return trace, study.trials

    def test_decisions_are_legal_and_every_trial_ends_in_a_legal_state(self) -> None:
        trace, trials = self.replay(self.make_scheduler())
        assert any(entry[0] == "report" for entry in trace)
        for record in trials:
            steps = sorted(record.intermediate)
            # A PBT child goes on after the step whose checkpoint it inherits.
            first = record.lineage.step + 1 if record.lineage is not None and record.lineage.step else 1
            assert steps == list(range(first, first + len(steps))), f"trial {record.number} ran steps {steps}"
            assert not steps or steps[-1] <= self.max_resource
            assert record.budget is None or 1 <= record.budget <= self.max_resource
            if record.state is TrialState.PAUSED:
                assert steps, f"trial {record.number} paused before its first report"

    def test_same_seed_same_decisions(self) -> None:
        first, _ = self.replay(self.make_scheduler(seed=3))
        second, _ = self.replay(self.make_scheduler(seed=3))
        assert first == second

    def test_survives_pickling_into_a_trial_process(self) -> None:
        scheduler = self.make_scheduler(seed=5)
        copy = pickle.loads(pickle.dumps(scheduler))
        assert type(copy) is type(scheduler)
        assert json.dumps(copy.describe(), sort_keys=True) == json.dumps(scheduler.describe(), sort_keys=True)
        assert self.replay(copy)[0] == self.replay(scheduler)[0]

    def test_describe_is_json_and_names_the_scheduler(self) -> None:
        described = self.make_scheduler().describe()
        assert isinstance(described.get("name"), str) and described["name"]
        json.dumps(described)
