"""The direction the multi-fidelity tables give a significant difference is the one the rank test finds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "multifidelity"))

from significance import rank_shift, rank_test  # noqa: E402


def test_one_far_off_seed_does_not_turn_a_method_lower_on_most_seeds_into_the_worse_one():
    rng = np.random.default_rng(0)
    theirs = rng.uniform(0.03, 0.08, 20)
    mine = theirs - rng.uniform(0.005, 0.02, 20)
    mine[:3] = theirs[:3] + 0.001  # a little higher on 3 seeds
    mine[3] = 0.8  # and far off on one
    assert mine.mean() > theirs.mean()
    p, shift = rank_test(mine, theirs, paired=True)
    assert p < 0.05 and shift < 0


def test_the_shift_follows_a_consistent_difference_both_ways():
    rng = np.random.default_rng(1)
    base = rng.normal(size=30)
    assert rank_shift(base + 1.0, base, paired=True) == 1.0
    assert rank_shift(base, base + 0.5, paired=True) == -0.5
    p, shift = rank_test(base + 2.0, rng.normal(size=25), paired=False)
    assert p < 0.05 and 1.0 < shift < 3.0
