"""Syne Tune's multi-fidelity schedulers (Hyper-Tune, MOBSTER, DyHPO) driven by their scheduler objects on the
simulated clock, as Syne Tune's own ``Tuner`` drives them: ``suggest`` starts or resumes a trial, every epoch is
passed to ``on_trial_result``, whose STOP or PAUSE ends the job (then ``on_trial_remove``), and a job that ran to
the end the configuration asks for is passed to ``on_trial_complete``. Paused trials resume from their last epoch.
Runs in a virtual environment with ``syne-tune[gpsearchers]==0.13.*``.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.executors.simulated import Driver, Job
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace

METRIC = "value"
RESOURCE = "epoch"
MAX_RESOURCE = "epochs"


def config_space(space: SearchSpace, max_resource: int) -> dict[str, Any]:
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

    out: dict[str, Any] = {MAX_RESOURCE: max_resource}
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            out[name] = (loguniform if dist.log else uniform)(dist.low, dist.high)
        elif isinstance(dist, IntDistribution):
            out[name] = (lograndint if dist.log else randint)(dist.low, dist.high)
        elif isinstance(dist, CategoricalDistribution):
            out[name] = choice(list(dist.choices))
    return out


class SyneTuneDriver(Driver):
    """One of ``HyperTune``, ``MOBSTER`` or ``DyHPO`` from ``syne_tune.optimizer.baselines``, with its defaults
    (first trial at the centre of the space), rungs from 1 to ``max_resource`` epochs, reduction factor 3."""

    def __init__(self, objective: MultiFidelityFunction, seed: int, name: str) -> None:
        from syne_tune.optimizer import baselines

        for logger_name in ("syne_tune", "autogluon"):
            logging.getLogger(logger_name).setLevel(logging.ERROR)
        kwargs: dict[str, Any] = {
            "metric": METRIC,
            "mode": "max" if objective.direction == "maximize" else "min",
            "resource_attr": RESOURCE,
            "max_resource_attr": MAX_RESOURCE,
            "random_seed": seed,
        }
        if name != "DyHPO":
            kwargs |= {"grace_period": 1, "reduction_factor": 3}
        self.scheduler = getattr(baselines, name)(
            config_space(objective.space, objective.max_resource), **kwargs
        )
        self.names = list(objective.space)
        self.max_resource = objective.max_resource
        self.trials: dict[int, Any] = {}
        self.last_epoch: dict[int, int] = {}
        self.next_id = 0
        self.decision: dict[int, str] = {}

    def start(self) -> Job | None:
        from syne_tune.backend.trial_status import Trial

        suggestion = self.scheduler.suggest(trial_id=self.next_id)
        if suggestion is None:
            return None
        if suggestion.spawn_new_trial_id:
            trial = Trial(
                trial_id=self.next_id, config=dict(suggestion.config), creation_time=datetime.datetime.now()
            )
            self.next_id += 1
            self.trials[trial.trial_id] = trial
            self.scheduler.on_trial_add(trial=trial)
        else:
            trial = self.trials[suggestion.checkpoint_trial_id]
            if suggestion.config is not None:
                trial.config = dict(suggestion.config)
        first = self.last_epoch.get(trial.trial_id, 0) + 1
        last = min(int(trial.config.get(MAX_RESOURCE, self.max_resource)), self.max_resource)
        params = {name: trial.config[name] for name in self.names}
        return Job(trial, params, first, max(first, last), trial.trial_id)

    def report(self, job: Job, epoch: int, value: float) -> bool:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        self.last_epoch[job.trial] = epoch
        decision = self.scheduler.on_trial_result(trial=job.handle, result={METRIC: value, RESOURCE: epoch})
        self.decision[job.trial] = decision
        return decision == SchedulerDecision.CONTINUE

    def finish(self, job: Job, epoch: int, value: float) -> None:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        if self.decision.get(job.trial) in (SchedulerDecision.STOP, SchedulerDecision.PAUSE):
            self.scheduler.on_trial_remove(trial=job.handle)
        else:
            self.scheduler.on_trial_complete(job.handle, {METRIC: value, RESOURCE: epoch})
