"""DEHB through ask/tell: each job trains a configuration from scratch to the fidelity DEHB asks (rounded up to
whole epochs), as DEHB evaluates; its fitness is the loss (the value signed to be minimised). Runs in a virtual
environment with ``dehb``. Also the ConfigSpace translation SMAC uses."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from typing import Any

from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.executors.simulated import Driver, Job
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace


def configspace(space: SearchSpace, seed: int = 0) -> Any:
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            cs.add(CS.UniformFloatHyperparameter(name, dist.low, dist.high, log=dist.log))
        elif isinstance(dist, IntDistribution):
            cs.add(CS.UniformIntegerHyperparameter(name, dist.low, dist.high, log=dist.log))
        elif isinstance(dist, CategoricalDistribution):
            cs.add(CS.CategoricalHyperparameter(name, [str(c) for c in dist.choices]))
    return cs


def params_of(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """A ConfigSpace configuration as lmtune parameters (categoricals back from their string form)."""
    params = {}
    for name, dist in space.items():
        value = config[name]
        if isinstance(dist, CategoricalDistribution):
            value = next(c for c in dist.choices if str(c) == value)
        params[name] = value
    return params


class DEHBDriver(Driver):
    def __init__(self, objective: MultiFidelityFunction, seed: int) -> None:
        from dehb import DEHB
        from loguru import logger

        logger.remove()
        self._tmp = tempfile.TemporaryDirectory(prefix="dehb-")
        self.space = objective.space
        self.sign = 1.0 if objective.direction == "minimize" else -1.0
        self.dehb = DEHB(
            cs=configspace(objective.space),
            min_fidelity=1,
            max_fidelity=objective.max_resource,
            eta=3,
            n_workers=1,
            seed=seed,
            output_path=self._tmp.name,
            save_freq="end",
        )
        self.max_resource = objective.max_resource

    def start(self) -> Job | None:
        info = self.dehb.ask()
        epochs = min(self.max_resource, max(1, math.ceil(info["fidelity"] - 1e-9)))
        return Job(info, params_of(self.space, info["config"]), 1, epochs, info["config_id"])

    def report(self, job: Job, epoch: int, value: float) -> bool:
        return True

    def finish(self, job: Job, epoch: int, value: float) -> None:
        self.dehb.tell(job.handle, {"fitness": self.sign * value, "cost": float(epoch)})
