"""Schedulers decide when a trial continues, stops or pauses."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.schedulers.base import Action, Decision, NoScheduler, Scheduler, TrialStart
from lmtune.schedulers.bohb import BOHB
from lmtune.schedulers.curve import CurveExtrapolation
from lmtune.schedulers.hyperband import Hyperband
from lmtune.schedulers.median import MedianStopping
from lmtune.schedulers.pbt import PopulationBasedTraining
from lmtune.schedulers.successive_halving import SuccessiveHalving

__all__ = [
    "BOHB",
    "SCHEDULERS",
    "Action",
    "CurveExtrapolation",
    "Decision",
    "Hyperband",
    "MedianStopping",
    "NoScheduler",
    "PopulationBasedTraining",
    "Scheduler",
    "SuccessiveHalving",
    "TrialStart",
    "default_multifidelity_scheduler",
    "scheduler_from_config",
]

#: The study file's ``scheduler.name`` values.
SCHEDULERS: dict[str, type[Scheduler]] = {
    "none": NoScheduler,
    "median": MedianStopping,
    "asha": SuccessiveHalving,
    "hyperband": Hyperband,
    "bohb": BOHB,
    "pbt": PopulationBasedTraining,
    "curve": CurveExtrapolation,
}

RESOURCES = ("epoch", "step", "batch", "sample", "token")


def default_multifidelity_scheduler(max_resource: int, min_resource: int = 1, *, seed: int = 0) -> Scheduler:
    """lmtune's default multi-fidelity strategy: asynchronous BOHB with one bracket, i.e. ASHA that stops trials
    outside the top third of each rung, with new trials from TPE fitted on the highest rung with enough results
    (chosen on ``benchmarks/multifidelity``: the extra Hyperband brackets cost more than they saved there)."""
    return BOHB(max_resource, min_resource, reduction_factor=3, seed=seed, n_brackets=1)


def scheduler_from_config(config: Mapping[str, Any]) -> Scheduler:
    """Build a scheduler from its study-file form, e.g.
    ``{name: asha, resource: epoch, min_resource: 1, max_resource: 5, reduction_factor: 3, pause: false}``.

    Raises :class:`ConfigError` naming the field for an unknown name or option, a missing required option or a bad
    value (``reduction_factor`` below 2, ``min_resource > max_resource``, ...).
    """
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"scheduler must be a mapping like {{name: asha, max_resource: 5}}, but got {config!r}"
        )
    options = dict(config)
    name = options.pop("name", None)
    if name not in SCHEDULERS:
        raise ConfigError(f"scheduler.name must be one of {sorted(SCHEDULERS)}, but got {name!r}")
    cls = SCHEDULERS[name]
    own_init = cls.__init__ is not object.__init__
    parameters = dict(inspect.signature(cls.__init__).parameters) if own_init else {}
    allowed = [p for p in parameters if p != "self"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"scheduler.{unknown[0]} is not an option of scheduler {name!r}; its options are {allowed or 'none'}"
        )
    missing = [
        p
        for p, spec in parameters.items()
        if p != "self" and spec.default is inspect.Parameter.empty and p not in options
    ]
    if missing:
        raise ConfigError(f"scheduler.{missing[0]} is required for scheduler {name!r} (e.g. {missing[0]}: 5)")
    resource = options.get("resource", "epoch")
    if resource not in RESOURCES:
        raise ConfigError(f"scheduler.resource must be one of {list(RESOURCES)}, but got {resource!r}")
    if "pause" in options and not isinstance(options["pause"], bool):
        raise ConfigError(f"scheduler.pause must be true or false, but got {options['pause']!r}")
    return cls(**options)
