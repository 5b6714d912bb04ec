"""lmtune: fast hyperparameter optimisation for training and fine-tuning language models."""

from __future__ import annotations

from lmtune.exceptions import (
    ConfigError,
    LmtuneError,
    StorageError,
    TooManyFailedTrialsError,
    TrialPruned,
)
from lmtune.options import StudyOptions
from lmtune.program.reporting import report
from lmtune.space import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    Prior,
    SearchSpace,
)
from lmtune.study import Study, create_study, load_study
from lmtune.trial import Trial, TrialRecord, TrialState

__version__ = "0.1.0"

__all__ = [
    "CategoricalDistribution",
    "ConfigError",
    "FloatDistribution",
    "IntDistribution",
    "LmtuneError",
    "Prior",
    "SearchSpace",
    "StorageError",
    "Study",
    "StudyOptions",
    "TooManyFailedTrialsError",
    "Trial",
    "TrialPruned",
    "TrialRecord",
    "TrialState",
    "__version__",
    "create_study",
    "load_study",
    "report",
]
