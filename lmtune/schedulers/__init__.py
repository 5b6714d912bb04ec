"""Schedulers decide when a trial continues, stops or pauses."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.schedulers.auto import AutoScheduler, default_multifidelity_scheduler
from lmtune.schedulers.base import Action, Decision, NoScheduler, Scheduler, TrialStart
from lmtune.schedulers.bohb import BOHB
from lmtune.schedulers.curve import CurveExtrapolation
from lmtune.schedulers.hyperband import Hyperband
from lmtune.schedulers.median import MedianStopping
from lmtune.schedulers.pbt import PopulationBasedTraining
from lmtune.schedulers.successive_halving import SuccessiveHalving

__all__ = [
    "BOHB",
    "AutoScheduler",
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
    "as_scheduler",
    "default_multifidelity_scheduler",
    "scheduler_from_config",
]

#: The study file's ``scheduler.name`` values.
SCHEDULERS: dict[str, type[Scheduler]] = {
    "auto": AutoScheduler,
    "none": NoScheduler,
    "median": MedianStopping,
    "asha": SuccessiveHalving,
    "hyperband": Hyperband,
    "bohb": BOHB,
    "pbt": PopulationBasedTraining,
    "curve": CurveExtrapolation,
}

RESOURCES = ("epoch", "step", "batch", "sample", "token")


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
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise ConfigError(f"scheduler.name must be one of {sorted(SCHEDULERS)}, but got {name!r}")
    factory = SCHEDULERS[name]
    parameters = dict(inspect.signature(factory).parameters)
    allowed = list(parameters)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"scheduler.{unknown[0]} is not an option of scheduler {name!r}; its options are {allowed or 'none'}"
        )
    missing = [
        p for p, spec in parameters.items() if spec.default is inspect.Parameter.empty and p not in options
    ]
    if missing:
        raise ConfigError(f"scheduler.{missing[0]} is required for scheduler {name!r} (e.g. {missing[0]}: 5)")
    resource = options.get("resource", "epoch")
    if resource not in RESOURCES:
        raise ConfigError(f"scheduler.resource must be one of {list(RESOURCES)}, but got {resource!r}")
    if "pause" in options and not isinstance(options["pause"], bool):
        raise ConfigError(f"scheduler.pause must be true or false, but got {options['pause']!r}")
    return factory(**options)


def as_scheduler(scheduler: Scheduler | str | Mapping[str, Any] | None) -> Scheduler | None:
    """A scheduler given as an object, a name (``"auto"``, ``"asha"``, ...: ``{name: ...}`` with no options) or
    its study-file mapping (``{"name": "auto", "max_resource": 5}``)."""
    if scheduler is None or isinstance(scheduler, Scheduler):
        return scheduler
    if isinstance(scheduler, str):
        return scheduler_from_config({"name": scheduler})
    return scheduler_from_config(scheduler)
