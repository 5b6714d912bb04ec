"""What ``lmtune run`` does after the search: the final evaluation when the study file asks for it, otherwise
the language-model task's own end-of-study step (save the best model, evaluate it once on the test split).

With ``final_evaluation:`` and a ``task:``, the task's re-runs train with fresh seeds, and the chosen
configuration's first re-run (fixed in advance, not picked by score) is the model evaluated on the test split:
for classification with a bootstrap interval, the confusion matrix and the most confidently wrong examples.
The task's simple test evaluation is then skipped, so the test split is still read only once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.analysis.evaluate import TestResult, classification_test_result, final_evaluation
from lmtune.exceptions import ConfigError
from lmtune.trial import TrialRecord

if TYPE_CHECKING:
    from lmtune.config import StudySpec
    from lmtune.study import Study

__all__ = ["finish_study", "task_test"]

EVAL_BATCH = 32  # examples per forward pass on the test split


def finish_study(spec: StudySpec, study: Study) -> dict[str, Any] | None:
    """Run the final evaluation (``spec.final_evaluation``) or the task's finalize step; a JSON-able summary, or
    None when there is nothing to do."""
    settings = getattr(spec, "final_evaluation", None)
    if settings is None:
        return spec.task.finalize(study) if spec.task is not None else None
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
