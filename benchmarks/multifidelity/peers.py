"""The optimisers compared on the simulated clock, as runners ``(objective, n_workers, max_epochs, seed) ->
SimulationResult``: lmtune's schedulers and Optuna's pruners in this interpreter, and DEHB, SMAC3, Syne Tune and
NePS, each in its own virtual environment (their pinned dependencies clash), through the drivers in
``peer_*.py``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lmtune
from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.executors.simulated import Driver, Job, SimulatedExecutor, SimulationResult
from lmtune.samplers import RandomSampler
from lmtune.schedulers import BOHB, Hyperband, Scheduler, SuccessiveHalving, default_multifidelity_scheduler
from lmtune.schedulers.auto import AUTO_SETTINGS, IN_PARALLEL, AutoScheduler
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace

Runner = Callable[[MultiFidelityFunction, int, int, int], SimulationResult]


@dataclass(frozen=True)
class Peer:
    """A method: its runner, the virtual environment it runs in (None: this interpreter) and the settings that
    define it where they can change (stored with each run; a stored run with other settings is stale)."""

    runner: Runner
    venv: str | None = None
    settings: dict[str, Any] | None = None


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


def _driven(make: Callable[[MultiFidelityFunction, int], Driver]) -> Runner:
    def run(objective: MultiFidelityFunction, n_workers: int, max_epochs: int, seed: int) -> SimulationResult:
        return SimulatedExecutor(objective, n_workers, max_epochs).run_driver(make(objective, seed))

    return run


def _external(module: str, driver: str, *args: Any) -> Runner:
    """A driver of ``peer_<module>.py``, imported when the runner is first called (in the peer's environment)."""

    def make(objective: MultiFidelityFunction, seed: int) -> Driver:
        cls = getattr(importlib.import_module(f"peer_{module}"), driver)
        return cls(objective, seed, *args)

    return _driven(make)


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


#: ``auto``'s settings before its random draws came from a Sobol sequence (uniform draws, BOHB's default); the
#: earlier forms below had them too.
AUTO_UNIFORM = {k: v for k, v in AUTO_SETTINGS.items() if k != "random_draws"}


class UniformDrawsAuto(AutoScheduler):
    """``auto`` before its random draws (the random share and the trials before the model) came from a scrambled
    Sobol sequence."""

    settings = AUTO_UNIFORM


class LadderAuto(AutoScheduler):
    """``auto`` before its model read the rungs through the calibrated view: a ranked ladder of the rungs, and the
    highest rung only while trials run in parallel."""

    settings = AUTO_UNIFORM | {"model_rungs": "all"}
    in_parallel = {"model_rungs": "highest", "full_share": 0.0}


class ParallelRuleBefore(UniformDrawsAuto):
    """``auto`` before its rule in parallel left out ASHA's first pass at a rung and fitted the model from 3
    results on (and before its Sobol draws)."""

    in_parallel = {"model_rungs": "calibrated", "full_share": 0.0}


#: ``auto`` as it was before its budget-aware top rung kept half the resource on fully trained candidates and its
#: model left out the rungs that disagree with the highest one.
AUTO_EARLIER = {k: v for k, v in LadderAuto.settings.items() if k != "min_correlation"} | {"full_share": 0.3}

#: What defines ``auto`` in the stored runs: its settings and its rule while trials run in parallel.
AUTO = AUTO_SETTINGS | {"in_parallel": IN_PARALLEL}

#: Name -> method. The first is lmtune's default multi-fidelity strategy (``scheduler: {name: auto}``).
PEERS: dict[str, Peer] = {
    "lmtune auto": Peer(_lmtune(lambda r, s: default_multifidelity_scheduler(r, seed=s)), settings=AUTO),
    "lmtune auto, pause: true": Peer(
        _lmtune(lambda r, s: default_multifidelity_scheduler(r, seed=s, pause=True)),
        settings=AUTO | {"pause": True},
    ),
    "lmtune auto, uniform draws (before)": Peer(
        _lmtune(lambda r, s: UniformDrawsAuto(r, seed=s)),
        settings=AUTO_UNIFORM | {"in_parallel": IN_PARALLEL},
    ),
    "lmtune auto, parallel rule before": Peer(
        _lmtune(lambda r, s: ParallelRuleBefore(r, seed=s)),
        settings=AUTO_UNIFORM | {"in_parallel": ParallelRuleBefore.in_parallel},
    ),
    "lmtune auto, ranked ladder (before)": Peer(
        _lmtune(lambda r, s: LadderAuto(r, seed=s)),
        settings=LadderAuto.settings | {"in_parallel": LadderAuto.in_parallel},
    ),
    "lmtune auto, one rule at any worker count": Peer(
        _lmtune(lambda r, s: BOHB(r, seed=s, **AUTO_SETTINGS)), settings=AUTO_SETTINGS
    ),
    "lmtune auto, earlier (top rung 0.3)": Peer(
        _lmtune(lambda r, s: BOHB(r, seed=s, **AUTO_EARLIER)), settings=AUTO_EARLIER
    ),
    "lmtune BOHB (1 bracket, before)": Peer(_lmtune(lambda r, s: BOHB(r, seed=s, n_brackets=1))),
    "lmtune Hyperband": Peer(_lmtune(lambda r, s: Hyperband(r, seed=s))),
    "lmtune ASHA": Peer(_lmtune(lambda r, s: SuccessiveHalving(r))),
    "random search (full budget)": Peer(_lmtune(lambda r, s: None)),
    "Optuna TPE+Hyperband": Peer(_driven(lambda o, s: OptunaDriver(o, s, "hyperband"))),
    "Syne Tune Hyper-Tune": Peer(_external("syne_tune", "SyneTuneDriver", "HyperTune"), "synetune"),
    "Syne Tune MOBSTER": Peer(_external("syne_tune", "SyneTuneDriver", "MOBSTER"), "synetune"),
    "Syne Tune DyHPO": Peer(_external("syne_tune", "SyneTuneDriver", "DyHPO"), "synetune"),
    "SMAC3 multi-fidelity": Peer(_external("smac", "SMACDriver"), "smac"),
    "NePS PriorBand": Peer(_external("neps", "PriorBandDriver"), "neps"),
    "DEHB": Peer(_external("dehb", "DEHBDriver"), "dehb"),
}
