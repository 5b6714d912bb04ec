"""SMAC3's multi-fidelity facade (random forest + Hyperband intensifier) through ask/tell: each job trains a
configuration from scratch to the budget SMAC asks (rounded up to whole epochs), as SMAC evaluates. Runs in a
virtual environment with ``smac``.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

from peer_dehb import configspace, params_of

from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.executors.simulated import Driver, Job


class SMACDriver(Driver):
    def __init__(self, objective: MultiFidelityFunction, seed: int) -> None:
        from smac import MultiFidelityFacade, Scenario

        self._tmp = tempfile.TemporaryDirectory(prefix="smac-")
        self.space = objective.space
        self.sign = 1.0 if objective.direction == "minimize" else -1.0
        self.max_resource = objective.max_resource
        scenario = Scenario(
            configspace(objective.space, seed),
            deterministic=True,
            n_trials=100_000,
            min_budget=1,
            max_budget=objective.max_resource,
            seed=seed,
            output_directory=self._tmp.name,
        )
        intensifier = MultiFidelityFacade.get_intensifier(scenario, eta=3)
        self.smac = MultiFidelityFacade(
            scenario,
            target_function=self._never_called,
            intensifier=intensifier,
            overwrite=True,
            logging_level=40,
        )
        self.jobs = 0

    @staticmethod
    def _never_called(config: Any, seed: int = 0, budget: float = 1.0) -> float:
        raise RuntimeError("the simulated clock evaluates SMAC's configurations")

    def start(self) -> Job | None:
        info = self.smac.ask()
        epochs = min(self.max_resource, max(1, math.ceil((info.budget or self.max_resource) - 1e-9)))
        self.jobs += 1
        return Job(info, params_of(self.space, info.config), 1, epochs, self.jobs)

    def report(self, job: Job, epoch: int, value: float) -> bool:
        return True

    def finish(self, job: Job, epoch: int, value: float) -> None:
        from smac.runhistory.dataclasses import TrialValue

        self.smac.tell(job.handle, TrialValue(cost=self.sign * value, time=float(epoch)))
