"""A simulated clock: replay multi-fidelity objectives with N parallel workers in seconds, without a GPU.

Each worker trains one trial epoch by epoch; an epoch takes the simulated seconds the objective records for it.
Events (an epoch finishing on some worker) are processed in order of simulated time (ties: lower worker first),
so asynchronous schedulers see reports in the order a real cluster would produce them. After each epoch the
trial reports to its optimiser, which answers go on or stop; a worker that is free asks for the next job at that
moment. The run ends when ``max_epochs`` epochs have been trained in total. Nothing is random here: the same
optimiser seeds and objective seed give the same run.

:meth:`SimulatedExecutor.run` drives an lmtune :class:`~lmtune.study.Study` (its scheduler and sampler make every
decision); :meth:`SimulatedExecutor.run_driver` drives any optimiser wrapped as a :class:`Driver`, which is how
other libraries are compared on the same clock.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.exceptions import ConfigError
from lmtune.history import Direction
from lmtune.lifecycle import finish_trial

if TYPE_CHECKING:
    from lmtune.study import Study
    from lmtune.trial import Trial

__all__ = ["Driver", "Job", "SimulatedExecutor", "SimulationEvent", "SimulationResult", "StudyDriver"]


@dataclass
class Job:
    """A trial on a worker: train ``params`` from epoch ``next_epoch`` up to ``last_epoch`` (inclusive)."""

    handle: Any
    params: Mapping[str, Any]
    next_epoch: int
    last_epoch: int
    trial: int


@dataclass(frozen=True)
class SimulationEvent:
    """One finished epoch: when (simulated seconds), where, which trial, its value, and the epochs used so far."""

    time: float
    worker: int
    trial: int
    epoch: int
    value: float
    epochs_used: int
    params: Mapping[str, Any]
    extra: Mapping[str, float] = field(default_factory=dict)


class Driver(ABC):
    """An optimiser as the clock sees it: jobs out, reports in."""

    @abstractmethod
    def start(self) -> Job | None:
        """The next job for a free worker (None: nothing to run now)."""

    @abstractmethod
    def report(self, job: Job, epoch: int, value: float) -> bool:
        """Tell the value after ``epoch``; True to go on training."""

    @abstractmethod
    def finish(self, job: Job, epoch: int, value: float) -> None:
        """The job ended after ``epoch``: it reached its last epoch or was told to stop."""


@dataclass(frozen=True)
class SimulationResult:
    """All events of a run in time order, and the objective's direction and best value."""

    events: tuple[SimulationEvent, ...]
    max_resource: int
    direction: str
    best_value: float

    @property
    def epochs_used(self) -> int:
        return self.events[-1].epochs_used if self.events else 0

    @property
    def duration(self) -> float:
        """Simulated seconds until the last event."""
        return self.events[-1].time if self.events else 0.0

    def incumbents(self) -> list[SimulationEvent]:
        """The events at which the best fully trained configuration so far improved (what a method returns)."""
        direction = Direction(self.direction)
        best: list[SimulationEvent] = []
        for event in self.events:
            if event.epoch == self.max_resource and (
                not best or direction.better(event.value, best[-1].value)
            ):
                best.append(event)
        return best

    def incumbent_at(self, epochs: float) -> SimulationEvent | None:
        """The returned configuration once ``epochs`` epochs were used (None before any full training)."""
        found = None
        for event in self.incumbents():
            if event.epochs_used > epochs:
                break
            found = event
        return found


class StudyDriver(Driver):
    """Runs an lmtune study's trials on the clock: ``study.ask()`` starts a job (a new trial, a promoted paused one,
    or a PBT child continuing after its parent's step), each epoch is ``trial.report``-ed, and the trial is told
    COMPLETE, PRUNED or PAUSED as the scheduler decided."""

    def __init__(self, study: Study, objective: MultiFidelityFunction) -> None:
        self.study = study
        self.objective = objective

    def start(self) -> Job | None:
        trial = self.study.ask()
        if trial is None:
            return None
        record = self.study.storage.get_trial(trial.trial_id)
        if record.last_step is not None:  # a paused trial resumed from its checkpoint
            first = record.last_step + 1
        else:  # a PBT child starts after the step whose checkpoint it inherits
            first = (record.lineage.step or 0) + 1 if record.lineage is not None else 1
        last = min(trial.budget or self.objective.max_resource, self.objective.max_resource)
        return Job(trial, trial.params, first, max(first, last), trial.number)

    def report(self, job: Job, epoch: int, value: float) -> bool:
        trial: Trial = job.handle
        trial.report(value, epoch)
        return not trial.should_stop()

    def finish(self, job: Job, epoch: int, value: float) -> None:
        finish_trial(self.study, job.handle, value)


class SimulatedExecutor:
    """Replays ``objective`` with ``n_workers`` parallel workers until ``max_epochs`` epochs were trained."""

    def __init__(self, objective: MultiFidelityFunction, n_workers: int = 1, max_epochs: int = 150) -> None:
        for name, value in (("n_workers", n_workers), ("max_epochs", max_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, but got {value!r}")
        self.objective = objective
        self.n_workers = n_workers
        self.max_epochs = max_epochs

    def run(self, study: Study) -> SimulationResult:
        """Drive ``study`` (created with ``space=objective.space`` and the objective's direction)."""
        if study.direction != self.objective.direction:
            raise ConfigError(
                f"the study's direction is {study.direction!r} but {self.objective.name} is to "
                f"{self.objective.direction}; create the study with direction={self.objective.direction!r}"
            )
        try:
            return self.run_driver(StudyDriver(study, self.objective))
        finally:
            study.close()

    def run_driver(self, driver: Driver) -> SimulationResult:
        """Drive any optimiser wrapped as a :class:`Driver`."""
        queue: list[tuple[float, int]] = []
        jobs: dict[int, Job] = {}
        events: list[SimulationEvent] = []
        used = 0

        def begin(worker: int, now: float) -> None:
            job = driver.start()
            if job is None:
                return
            jobs[worker] = job
            heapq.heappush(queue, (now + self._cost(job), worker))

        for worker in range(self.n_workers):
            begin(worker, 0.0)
        while queue and used < self.max_epochs:
            now, worker = heapq.heappop(queue)
            job = jobs[worker]
            epoch = job.next_epoch
            evaluation = self.objective.evaluate(job.params, epoch)
            used += 1
            events.append(
                SimulationEvent(
                    now,
                    worker,
                    job.trial,
                    epoch,
                    evaluation.value,
                    used,
                    dict(job.params),
                    dict(evaluation.extra),
                )
            )
            go_on = driver.report(job, epoch, evaluation.value)
            if go_on and epoch < job.last_epoch:
                job.next_epoch += 1
                heapq.heappush(queue, (now + self._cost(job), worker))
            else:
                driver.finish(job, epoch, evaluation.value)
                del jobs[worker]
                begin(worker, now)
        return SimulationResult(
            tuple(events), self.objective.max_resource, self.objective.direction, self.objective.best_value
        )

    def _cost(self, job: Job) -> float:
        return self.objective.evaluate(job.params, job.next_epoch).cost
