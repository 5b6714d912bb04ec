"""The multi-fidelity tasks of the benchmark: recorded SST-2 fine-tuning curves (``sst2-prior``: with the
``encoder-finetune`` preset's priors on the parameters it shares), multi-fidelity Hartmann-3/6 and LCBench through the YAHPO Gym
surrogate (which needs onnxruntime)."""

from __future__ import annotations

from collections.abc import Callable

from lmtune.benchmarking.curves import MultiFidelityFunction, MultiFidelityHartmann, RecordedCurves
from lmtune.nlp.presets import get_preset
from lmtune.space import CategoricalDistribution, FloatDistribution, Prior, SearchSpace


def with_preset_priors(objective: MultiFidelityFunction, preset: str) -> MultiFidelityFunction:
    """``objective`` with the priors of ``preset`` on the parameters both have (prior values inside the range)."""
    priors = {name: spec["prior"] for name, spec in get_preset(preset).items() if "prior" in spec}
    dists = {}
    for name, dist in objective.space.items():
        spec = priors.get(name)
        if spec is not None and dist.contains(spec["value"]):
            prior = Prior(spec["value"], spec["confidence"])
            if isinstance(dist, FloatDistribution):
                dist = FloatDistribution(dist.low, dist.high, log=dist.log, prior=prior)
            elif isinstance(dist, CategoricalDistribution):
                dist = CategoricalDistribution(list(dist.choices), prior=prior)
        dists[name] = dist
    objective.space = SearchSpace(dists)
    return objective


def _sst2_prior(seed: int) -> MultiFidelityFunction:
    return with_preset_priors(RecordedCurves(), "encoder-finetune")


def _lcbench(instance: str) -> Callable[[int], MultiFidelityFunction]:
    def make(seed: int) -> MultiFidelityFunction:
        from lmtune.benchmarking.lcbench import LCBench

        return LCBench(instance, seed=seed)

    return make


#: Task name -> (objective factory (seed), tolerance for "reached the best": 1 accuracy point; 0.25 on Hartmann,
#: about 7% of its optimum).
TASKS: dict[str, tuple[Callable[[int], MultiFidelityFunction], float]] = {
    "sst2": (lambda seed: RecordedCurves(), 0.01),
    "sst2-prior": (_sst2_prior, 0.01),
    "mfh3-good": (lambda seed: MultiFidelityHartmann(3, "good", seed=seed), 0.25),
    "mfh3-bad": (lambda seed: MultiFidelityHartmann(3, "bad", seed=seed), 0.25),
    "mfh6-good": (lambda seed: MultiFidelityHartmann(6, "good", seed=seed), 0.25),
    "mfh6-bad": (lambda seed: MultiFidelityHartmann(6, "bad", seed=seed), 0.25),
}
#: LCBench instances (OpenML task ids; 52 epochs a full training), tolerance in validation accuracy (fraction).
for _instance in ("167190", "189906", "3945"):
    TASKS[f"lcbench-{_instance}"] = (_lcbench(_instance), 0.01)

#: The recorded metric shown for the returned configuration, per task (others: none).
TEST_METRIC = {name: ("test_acc", "test acc") for name in ("sst2", "sst2-prior")} | {
    name: ("test_balanced_accuracy", "test bal. acc") for name in TASKS if name.startswith("lcbench-")
}
