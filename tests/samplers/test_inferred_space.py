"""The define-by-run space kept up to date as trials finish equals the one computed from every record."""

from __future__ import annotations

import numpy as np

from lmtune.history import TrialHistory
from lmtune.samplers._inferred_space import InferredSpaceCache
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, distribution_from_dict
from lmtune.trial import TrialRecord, TrialState

DISTRIBUTIONS = {
    "lr": [FloatDistribution(1e-5, 1e-1, log=True), FloatDistribution(1e-4, 1e-1, log=True)],
    "layers": [IntDistribution(1, 8)],
    "act": [CategoricalDistribution(["relu", "gelu"])],
    "extra": [FloatDistribution(0.0, 1.0)],
}
FINAL = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


def _distributions(rng: np.random.Generator) -> dict:  # type: ignore[type-arg]
    names = [n for n in DISTRIBUTIONS if rng.random() < 0.85]
    rng.shuffle(names)
    # New but equal objects each time (as suggest_* makes them); now and then another distribution.
    choice = {n: DISTRIBUTIONS[n][int(rng.random() < 0.05) % len(DISTRIBUTIONS[n])] for n in names}
    return {n: distribution_from_dict(d.to_dict()) for n, d in choice.items()}


def test_equals_the_space_computed_from_all_records() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        cache = InferredSpaceCache()
        records: list[TrialRecord] = []
        hidden: set[int] = set()  # numbers a snapshot does not hold yet (read later, as across processes)
        for step in range(60):
            if rng.random() < 0.6 or not records:
                records.append(
                    TrialRecord(len(records), len(records), TrialState.RUNNING, {}, _distributions(rng))
                )
                if rng.random() < 0.1:
                    hidden.add(len(records) - 1)
            running = [r for r in records if r.state is TrialState.RUNNING]
            if running and rng.random() < 0.7:  # a trial finishes, not necessarily the oldest
                done = running[int(rng.integers(len(running)))]
                state = FINAL[int(rng.integers(3))] if seed % 2 or step >= 30 else TrialState.FAILED
                value = float(rng.random()) if state is TrialState.COMPLETE else None
                records[done.number] = done.replace(state=state, value=value)
            if rng.random() < 0.3:
                hidden.clear()
            history = TrialHistory(tuple(r for r in records if r.number not in hidden))
            full = TrialHistory(tuple(records))
            got = cache.space_of(history)
            # Hidden trials may be folded already (they were seen before); otherwise the snapshot decides.
            expected = history.inferred_space() if not hidden else None
            if expected is not None:
                assert list(got) == list(expected), (seed, step)
                assert all(got[n] == expected[n] for n in got)
            else:
                assert set(got) <= set(full.inferred_space()) | set(history.inferred_space())


def test_the_same_object_while_unchanged() -> None:
    cache = InferredSpaceCache()
    first = TrialRecord(0, 0, TrialState.COMPLETE, {}, {"x": FloatDistribution(0.0, 1.0)}, value=1.0)
    running = TrialRecord(1, 1, TrialState.RUNNING, {}, {"x": FloatDistribution(0.0, 1.0)})
    space = cache.space_of(TrialHistory((first,)))
    assert list(space) == ["x"]
    assert cache.space_of(TrialHistory((first, running))) is space
