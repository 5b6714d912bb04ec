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
