"""Every built-in sampler passes the shipped conformance suite."""

from __future__ import annotations

from typing import Any

from lmtune.samplers import AutoSampler, GPSampler, GridSampler, RandomSampler, SobolSampler, TPESampler
from lmtune.space import SearchSpace
from lmtune.testing.samplers import MIXED_CONDITIONAL_SPACE, SamplerConformance


class TestRandomConformance(SamplerConformance):
    sampler_class = RandomSampler


class TestSobolConformance(SamplerConformance):
    sampler_class = SobolSampler


class TestGridConformance(SamplerConformance):
    sampler_class = GridSampler
    sampler_options: dict[str, Any] = {"shuffle": True}
    supports_define_by_run = False

    def space(self) -> SearchSpace:
        gridded = {name: dict(spec) for name, spec in MIXED_CONDITIONAL_SPACE.items()}
        for name in ("lr", "momentum", "beta2"):
            gridded[name]["grid_points"] = 4
        return SearchSpace.from_dict(gridded)


class TestTPEConformance(SamplerConformance):
    sampler_class = TPESampler


class TestGPConformance(SamplerConformance):
    sampler_class = GPSampler
    sampler_options: dict[str, Any] = {"n_candidates": 256}


class TestAutoConformance(SamplerConformance):
    sampler_class = AutoSampler


def test_every_registered_sampler_can_be_sent_to_a_trial_process() -> None:
    """Worker processes receive the study's sampler by pickle: a copy must suggest what the original does."""
    import pickle

    from lmtune.history import TrialHistory
    from lmtune.samplers import SAMPLERS
    from lmtune.space import SearchSpace
    from lmtune.testing.functions import MIXED_SPACE

    space = SearchSpace.from_dict(MIXED_SPACE)
    for name, cls in SAMPLERS.items():
        sampler = cls(seed=3)
        copy = pickle.loads(pickle.dumps(sampler))
        empty = TrialHistory((), "minimize", space)
        if name == "grid":
            continue  # a float without step cannot be gridded; grid is covered by its own tests
        assert copy.suggest(space, empty, 0) == sampler.suggest(space, empty, 0), name
