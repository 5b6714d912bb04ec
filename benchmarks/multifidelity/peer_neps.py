"""NePS PriorBand (Hyperband base) through NePS's ask/tell, with the space's priors (on SST-2 those of the
``encoder-finetune`` preset; tasks without priors make PriorBand sample uniformly, as NePS warns). A promoted
configuration continues from the epochs its previous rung trained. Runs in a virtual environment with
``neural-pipeline-search``.
"""

from __future__ import annotations

import logging
import random
import warnings
from typing import Any

import numpy as np

from lmtune.benchmarking.curves import MultiFidelityFunction
from lmtune.executors.simulated import Driver, Job
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace

FIDELITY = "epochs"


def _confidence(confidence: float) -> str:
    return "high" if confidence >= 0.7 else "medium" if confidence >= 0.4 else "low"


def neps_space(space: SearchSpace, max_resource: int) -> Any:
    from neps.space import HPOCategorical, HPOFloat, HPOInteger
    from neps.space import SearchSpace as NepsSpace

    out: dict[str, Any] = {}
    for name, dist in space.items():
        prior: dict[str, Any] = {}
        if dist.prior is not None:
            prior = {"prior": dist.prior.value, "prior_confidence": _confidence(dist.prior.confidence)}
        if isinstance(dist, FloatDistribution):
            out[name] = HPOFloat(dist.low, dist.high, log=dist.log, **prior)
        elif isinstance(dist, IntDistribution):
            out[name] = HPOInteger(dist.low, dist.high, log=dist.log, **prior)
        elif isinstance(dist, CategoricalDistribution):
            out[name] = HPOCategorical(list(dist.choices), **prior)
    out[FIDELITY] = HPOInteger(1, max_resource, is_fidelity=True)
    return NepsSpace(out)


class PriorBandDriver(Driver):
    def __init__(self, objective: MultiFidelityFunction, seed: int) -> None:
        import neps
        import torch

        warnings.filterwarnings("ignore")
        logging.getLogger("neps").setLevel(logging.ERROR)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.names = list(objective.space)
        self.sign = 1.0 if objective.direction == "minimize" else -1.0
        self.max_resource = objective.max_resource
        has_prior = any(d.prior is not None for d in objective.space.values())
        optimizer = neps.algorithms.priorband(
            neps_space(objective.space, objective.max_resource), sample_prior_first=has_prior
        )
        self.neps = neps.AskAndTell(optimizer=optimizer)
        self.trained: dict[str, int] = {}  # trial id -> epochs trained
        self.number: dict[str, int] = {}  # configuration (id before "_rung") -> job number

    def start(self) -> Job | None:
        trial = self.neps.ask()
        config = trial.config
        previous = trial.metadata.previous_trial_id
        first = self.trained.get(previous, 0) + 1 if previous else 1
        last = min(int(config[FIDELITY]), self.max_resource)
        key = trial.id.split("_rung")[0]
        number = self.number.setdefault(key, len(self.number))
        return Job(trial, {name: config[name] for name in self.names}, min(first, last), last, number)

    def report(self, job: Job, epoch: int, value: float) -> bool:
        return True

    def finish(self, job: Job, epoch: int, value: float) -> None:
        self.trained[job.handle.id] = epoch
        self.neps.tell(job.handle, {"objective_to_minimize": self.sign * value, "cost": float(epoch)})
