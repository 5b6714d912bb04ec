"""The optimisers compared on the simulated clock: lmtune's schedulers, Optuna's pruners and DEHB, as drivers."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import lmtune
from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.executors.simulated import Driver, Job, SimulatedExecutor, SimulationResult
from lmtune.samplers import RandomSampler
from lmtune.schedulers import (
    Hyperband,
    Scheduler,
    SuccessiveHalving,
    default_multifidelity_scheduler,
)
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace

Runner = Callable[[MultiFidelityFunction, int, int, int], SimulationResult]


def _lmtune(make_scheduler: Callable[[int, int], Scheduler | None]) -> Runner:
    def run(objective: MultiFidelityFunction, n_workers: int, max_epochs: int, seed: int) -> SimulationResult:
        study = lmtune.create_study(
            objective.direction,
            space=objective.space,
            sampler=RandomSampler(seed=seed),
            scheduler=make_scheduler(objective.max_resource, seed),
        )
        return SimulatedExecutor(objective, n_workers, max_epochs).run(study)

    return run


# Optuna ----------------------------------------------------------------------------------------------------------
def _optuna_distributions(space: SearchSpace) -> dict[str, Any]:
    import optuna

    out: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            out[name] = optuna.distributions.FloatDistribution(dist.low, dist.high, log=dist.log)
        elif isinstance(dist, IntDistribution):
            out[name] = optuna.distributions.IntDistribution(dist.low, dist.high, log=dist.log)
        elif isinstance(dist, CategoricalDistribution):
            out[name] = optuna.distributions.CategoricalDistribution(list(dist.choices))
    return out


class OptunaDriver(Driver):
    """Optuna's ask/tell with ``trial.report`` / ``trial.should_prune`` after every epoch."""

    def __init__(self, objective: MultiFidelityFunction, seed: int, pruner: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruners = {
            "hyperband": optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=objective.max_resource, reduction_factor=3
            ),
            "sha": optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        }
        self.study = optuna.create_study(
            direction=objective.direction,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruners[pruner],
        )
        self.distributions = _optuna_distributions(objective.space)
        self.max_resource = objective.max_resource

    def start(self) -> Job | None:
        trial = self.study.ask(self.distributions)
        return Job(trial, trial.params, 1, self.max_resource, trial.number)

    def report(self, job: Job, epoch: int, value: float) -> bool:
        job.handle.report(value, epoch)
        return not job.handle.should_prune()

    def finish(self, job: Job, epoch: int, value: float) -> None:
        import optuna

        if epoch < self.max_resource:
            self.study.tell(job.handle, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(job.handle, value)


# DEHB ------------------------------------------------------------------------------------------------------------
def _configspace(space: SearchSpace) -> Any:
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=0)
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            cs.add(CS.UniformFloatHyperparameter(name, dist.low, dist.high, log=dist.log))
        elif isinstance(dist, IntDistribution):
            cs.add(CS.UniformIntegerHyperparameter(name, dist.low, dist.high, log=dist.log))
        elif isinstance(dist, CategoricalDistribution):
            cs.add(CS.CategoricalHyperparameter(name, [str(c) for c in dist.choices]))
    return cs


class DEHBDriver(Driver):
    """DEHB's ask/tell: each job trains a configuration from scratch to the fidelity DEHB asks (rounded to whole
    epochs), as DEHB evaluates; its fitness is the loss (the value signed to be minimised)."""

    def __init__(self, objective: MultiFidelityFunction, seed: int) -> None:
        from dehb import DEHB
        from loguru import logger

        logger.remove()
        self._tmp = tempfile.TemporaryDirectory(prefix="dehb-")
        self.space = objective.space
        self.sign = 1.0 if objective.direction == "minimize" else -1.0
        self.dehb = DEHB(
            cs=_configspace(objective.space),
            min_fidelity=1,
            max_fidelity=objective.max_resource,
            eta=3,
            n_workers=1,
            seed=seed,
            output_path=self._tmp.name,
            save_freq="end",
        )
        self.max_resource = objective.max_resource

    def _params(self, config: Mapping[str, Any]) -> dict[str, Any]:
        params = {}
        for name, dist in self.space.items():
            value = config[name]
            if isinstance(dist, CategoricalDistribution):
                value = next(c for c in dist.choices if str(c) == value)
            params[name] = value
        return params

    def start(self) -> Job | None:
        info = self.dehb.ask()
        epochs = min(self.max_resource, max(1, math.ceil(info["fidelity"] - 1e-9)))
        return Job(info, self._params(info["config"]), 1, epochs, info["config_id"])

    def report(self, job: Job, epoch: int, value: float) -> bool:
        return True

    def finish(self, job: Job, epoch: int, value: float) -> None:
        self.dehb.tell(job.handle, {"fitness": self.sign * value, "cost": float(epoch)})


def _driven(make: Callable[[MultiFidelityFunction, int], Driver]) -> Runner:
    def run(objective: MultiFidelityFunction, n_workers: int, max_epochs: int, seed: int) -> SimulationResult:
        return SimulatedExecutor(objective, n_workers, max_epochs).run_driver(make(objective, seed))

    return run


#: Name -> runner. The first is lmtune's default multi-fidelity strategy.
PEERS: dict[str, Runner] = {
    "lmtune default (BOHB)": _lmtune(lambda r, s: default_multifidelity_scheduler(r, seed=s)),
    "lmtune Hyperband": _lmtune(lambda r, s: Hyperband(r, seed=s)),
    "lmtune ASHA": _lmtune(lambda r, s: SuccessiveHalving(r)),
    "random search (full budget)": _lmtune(lambda r, s: None),
    "Optuna TPE+Hyperband": _driven(lambda o, s: OptunaDriver(o, s, "hyperband")),
    "Optuna TPE+SHA": _driven(lambda o, s: OptunaDriver(o, s, "sha")),
    "DEHB": _driven(DEHBDriver),
}
