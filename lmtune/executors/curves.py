"""The benchmark objectives' former home, kept so that existing imports work: see :mod:`lmtune.benchmarking.curves`."""

from lmtune.benchmarking.curves import *  # noqa: F403
from lmtune.benchmarking.curves import __all__ as __all__
