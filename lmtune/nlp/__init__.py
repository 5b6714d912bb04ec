"""Fine-tuning and training language models as study objectives (needs the ``nlp`` extra).

``load_task(spec, base_dir)`` turns a study file's ``task:`` section into the objective; ``get_preset(name)``
returns a search space with priors drawn from published practice.
"""

from __future__ import annotations

from typing import Any

from lmtune._imports import require
from lmtune.nlp.presets import PRESETS, get_preset

__all__ = ["PRESETS", "get_preset", "load_task"]

_REQUIRED = ("torch", "transformers", "tokenizers", "peft", "sacrebleu")


def load_task(spec: Any, base_dir: Any) -> Any:
    """See :func:`lmtune.nlp.task.load_task`; imported lazily so presets work without torch."""
    for name in _REQUIRED:
        require(name, "nlp")
    from lmtune.nlp.task import load_task as _load_task

    return _load_task(spec, base_dir)
