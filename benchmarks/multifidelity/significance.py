"""The rank tests the multi-fidelity tables report, with the direction each test itself finds.

A table cell says which side a test favours. The side is read from the estimate that goes with the test (the
Hodges-Lehmann shift: the median of the Walsh averages of the paired differences for the Wilcoxon signed-rank
test, the median of all pairwise differences for Mann-Whitney), not from the means: one far-off seed can put a
method's mean above another's while it is lower on most seeds, and the rank test then finds it the better one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import mannwhitneyu, wilcoxon

__all__ = ["rank_shift", "rank_test"]


def rank_shift(mine: Sequence[float], theirs: Sequence[float], paired: bool) -> float:
    """Hodges-Lehmann estimate of how far ``mine`` lies above ``theirs`` (positive: higher)."""
    a, b = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    if paired:
        d = a - b
        return float(np.median((d[:, None] + d[None, :])[np.triu_indices(len(d))] / 2))
    return float(np.median(a[:, None] - b[None, :]))


def rank_test(mine: Sequence[float], theirs: Sequence[float], paired: bool) -> tuple[float, float]:
    """Two-sided p of the Wilcoxon signed-rank test (paired) or the Mann-Whitney test of ``mine`` against
    ``theirs``, and :func:`rank_shift`."""
    p = wilcoxon(mine, theirs).pvalue if paired else mannwhitneyu(mine, theirs).pvalue
    return float(p), rank_shift(mine, theirs, paired)
