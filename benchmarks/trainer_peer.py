"""The Optuna + Hugging Face ``Trainer`` side of the fine-tuning benchmarks (gpu_study.py, trial_costs.py): the
rows it trains on and the ``TrainingArguments`` of its trials, written once so that both benchmarks run the same
peer. transformers is imported inside the functions: trial_costs.py times the imports itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def tokenised_rows(tokenizer: Any, rows: Sequence[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """A task's classification rows as the ``Trainer`` takes them: token ids, attention mask and label, unpadded
    (``DataCollatorWithPadding`` pads each batch)."""
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": int(r["label"])}
        for ids, mask, r in zip(encoded["input_ids"], encoded["attention_mask"], rows, strict=True)
    ]


def training_arguments(workdir: Path, epochs: int, batch_size: int, device: str, **params: Any) -> Any:
    """``TrainingArguments`` of one peer trial: the lmtune side's budget (``epochs`` epochs of batches of
    ``batch_size``, linear schedule, gradient clipping at 1, evaluated every epoch, seed 0), nothing saved or
    logged, bf16 on a GPU; ``params`` are the trial's own (learning rate, weight decay, warm-up)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(workdir / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=128,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=0,
        data_seed=0,
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        dataloader_num_workers=0,
        **params,
    )
