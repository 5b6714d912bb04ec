"""Integrations with the tools users already have; each module imports its tool only when it is imported.

``hf`` (Hugging Face ``Trainer``), ``sklearn`` (an estimator and a search), ``lightning`` (a callback),
``optuna`` (objectives written for Optuna), ``keras`` (a pruning callback and Keras Tuner hypermodels) and the
trackers. The core never imports this package.
"""

from __future__ import annotations
