"""Samplers decide which configuration to try next. Each is a pure function of (space, history, seed)."""

from __future__ import annotations

from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.samplers.auto import AutoSampler
from lmtune.samplers.base import Sampler
from lmtune.samplers.gp import GPSampler
from lmtune.samplers.grid import GridSampler
from lmtune.samplers.random import RandomSampler
from lmtune.samplers.sobol import SobolSampler
from lmtune.samplers.tpe import TPESampler

__all__ = [
    "AutoSampler",
    "GPSampler",
    "GridSampler",
    "RandomSampler",
    "Sampler",
    "SobolSampler",
    "TPESampler",
    "default_sampler",
    "sampler_from_config",
]

SAMPLERS: dict[str, type[Sampler]] = {
    "grid": GridSampler,
    "random": RandomSampler,
    "sobol": SobolSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
    "auto": AutoSampler,
}


def default_sampler(seed: int | None = None) -> Sampler:
    """The sampler a study uses when none is given: ``auto`` (grid, GP or TPE, chosen per study)."""
    return AutoSampler(seed=seed)


def sampler_from_config(config: dict[str, Any], *, n_trials: int | None = None) -> Sampler:
    """Build a sampler from its study-file form ``{name: ..., seed: ..., **options}``.

    ``n_trials`` is the study's budget, if known: ``auto`` uses it (unless its options give one) to decide whether
    the whole grid fits.
    """
    options = dict(config)
    name = options.pop("name", None)
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ConfigError(f"sampler.name: must be one of {sorted(SAMPLERS)}, but got {name!r}")
    if name == "auto" and n_trials is not None:
        options.setdefault("n_trials", n_trials)
    try:
        return SAMPLERS[name](**options)
    except TypeError as exc:
        raise ConfigError(
            f"sampler: {name!r} does not take the options {sorted(options)} ({exc}); see the sampler's documentation"
        ) from None
