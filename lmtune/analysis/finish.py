"""What ``lmtune run`` does after the search: the final evaluation when the study file asks for it, otherwise
the language-model task's own end-of-study step (save the best model, evaluate it once on the test split).

With ``final_evaluation:`` and a ``task:``, the task's re-runs train with fresh seeds, and the chosen
configuration's first re-run (fixed in advance, not picked by score) is the model evaluated on the test split:
for classification with a bootstrap interval, the confusion matrix and the most confidently wrong examples.
The task's simple test evaluation is then skipped, so the test split is still read only once.

The task's step stores its summary (with a confidence interval for a proportion metric such as accuracy) as the
study attribute ``final_result``, so the report shows the test score and the saved model's folder; a study
finished before that attribute existed is read from ``best_model/lmtune_result.json`` beside its checkpoints.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.analysis.evaluate import TestResult, classification_test_result, final_evaluation
from lmtune.exceptions import ConfigError, LmtuneError
from lmtune.storage import Storage
from lmtune.trial import TrialRecord

if TYPE_CHECKING:
    from lmtune.config import StudySpec
    from lmtune.study import Study

__all__ = ["RESULT_ATTR", "finish_study", "load_final_result", "proportion_interval", "task_test"]

EVAL_BATCH = 32  # examples per forward pass on the test split
RESULT_ATTR = "final_result"
RESULT_FILE = "lmtune_result.json"
PROPORTION_METRICS = ("accuracy", "exact_match")  # the mean of per-example 0/1 outcomes
Z_95 = 1.959963984540054


def finish_study(spec: StudySpec, study: Study) -> dict[str, Any] | None:
    """Run the final evaluation (``spec.final_evaluation``) or the task's finalize step; a JSON-able summary, or
    None when there is nothing to do."""
    settings = getattr(spec, "final_evaluation", None)
    if settings is None:
        if spec.task is None:
            return None
        summary = with_test_interval(spec.task.finalize(study))
        study.set_attr(RESULT_ATTR, json.loads(json.dumps(summary, default=str)))
        return summary
    settings = dict(settings)
    test = None
    if spec.task is not None:
        if settings.get("folds") is not None:
            raise ConfigError(
                "final_evaluation.folds: language-model tasks re-run with seeds only; remove "
                "`folds` or use an objective that reads trial.params['fold']"
            )
        task = spec.task

        def test(params: dict[str, Any], runs: list[TrialRecord]) -> TestResult:
            return task_test(task, runs[0], confidence=settings.get("confidence", 0.95))

    return final_evaluation(study, spec.objective, test=test, **settings).to_dict()


def task_test(task: Any, record: TrialRecord, *, confidence: float = 0.95) -> TestResult:
    """Evaluate ``record``'s best checkpoint once on the task's test split."""
    import torch

    from lmtune.nlp.checkpoint import BEST, load_checkpoint
    from lmtune.nlp.hyperparameters import Hyperparameters
    from lmtune.nlp.lora import merge_lora
    from lmtune.nlp.task_types import Classification, collate
    from lmtune.nlp.training import evaluate_model

    if not record.checkpoint_dir or not (Path(record.checkpoint_dir) / BEST).is_dir():
        raise ConfigError(f"re-run trial {record.number} has no saved checkpoint to test")
    tensors, meta = load_checkpoint(Path(record.checkpoint_dir) / BEST)
    hp = Hyperparameters.from_params(meta["params"])
    max_length = int(hp.max_length or task.spec.max_length)
    model = task.build(hp, max_length)
    model.load_state_dict(tensors["model"], strict=False)
    model = merge_lora(model).eval()
    examples = task.encoded("test", max_length)
    if not isinstance(task.task_type, Classification):
        scores = evaluate_model(
            task.task_type,
            model,
            examples,
            task.tokenizer,
            task.device,
            generate_max_length=task.spec.generate_max_length,
        )
        return TestResult(
            score=float(scores[task.metric]),
            n_examples=len(examples),
            metric=task.metric,
            details={"metrics": scores, "checkpoint_dir": record.checkpoint_dir},
        )
    probabilities = []
    with torch.inference_mode():
        for start in range(0, len(examples), EVAL_BATCH):
            batch = collate(examples[start : start + EVAL_BATCH], task.tokenizer.pad_token_id, task.device)
            probabilities.append(torch.softmax(task.task_type.forward(model, batch).float(), dim=-1).cpu())
    probs = torch.cat(probabilities).numpy()
    gold = [int(e["labels"]) for e in examples]
    texts = [str(row["text"]) for row in task.splits.test]
    result = classification_test_result(gold, probs, texts, task.task_type.label_names, confidence=confidence)
    return replace(result, details={**result.details, "checkpoint_dir": record.checkpoint_dir})


def proportion_interval(score: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (95% by default) of a proportion ``score`` measured on ``n`` examples."""
    centre = (score + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(score * (1 - score) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def with_test_interval(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with ``test_interval`` (95%) added when its metric is a proportion and the test size is known."""
    metric = summary.get("metric")
    score = (summary.get("test") or {}).get(metric)
    n = (summary.get("split_sizes") or {}).get("test")
    if metric in PROPORTION_METRICS and isinstance(score, (int, float)) and n:
        return {**summary, "test_interval": list(proportion_interval(float(score), int(n)))}
    return summary


def load_final_result(study_name: str, storage: Storage) -> dict[str, Any] | None:
    """The saved best model's summary (test scores, its folder) of ``study_name``, or None when there is none.
    Read without opening the study (which would fail stale trials): the stored attribute, else the result file
    in ``best_model`` beside the trials' checkpoint folders."""
    from lmtune.analysis.records import read_history

    try:
        stored = storage.get_study(study_name).attrs.get(RESULT_ATTR)
    except LmtuneError:
        return None
    if stored:
        return dict(stored)
    folders = [r.checkpoint_dir for r in read_history(study_name, storage) if r.checkpoint_dir]
    for root in dict.fromkeys(Path(f).parent for f in folders):
        file = root / "best_model" / RESULT_FILE
        try:
            if file.is_file():
                return with_test_interval(json.loads(file.read_text()))
        except (OSError, ValueError):
            continue
    return None
