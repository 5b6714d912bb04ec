"""The benchmark objectives' former home, kept so that existing imports work: see :mod:`lmtune.benchmarking.lcbench`."""

from lmtune.benchmarking.lcbench import *  # noqa: F403
from lmtune.benchmarking.lcbench import __all__ as __all__
