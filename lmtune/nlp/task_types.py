"""What differs between task types: how rows become examples, how a batch is padded, its loss and its metrics.

An *example* is a dict of token id lists (``input_ids``, and ``labels`` as an int or a list); batches are padded
to their longest member, as Hugging Face's padding collators do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from lmtune.exceptions import ConfigError
from lmtune.nlp import metrics

__all__ = ["TEXT_COLUMNS", "Example", "TaskType", "collate", "task_type_for"]

Example = dict[str, Any]
#: The internal names of a classification row's texts: one text, or a sentence pair (the tokenizer's arguments).
TEXT_COLUMNS = ("text", "text_pair")
IGNORE = -100  # label id ignored by the loss (padding)


def collate(examples: Sequence[Example], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad a list of examples into tensors on ``device``: ``input_ids``, ``attention_mask``, ``labels``, and the
    segment ids ``token_type_ids`` of sentence pairs (padded with 0) when the examples have them."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
        mask[i, : len(e["input_ids"])] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in examples[0]:
        segments = torch.zeros((len(examples), width), dtype=torch.long)
        for i, e in enumerate(examples):
            segments[i, : len(e["token_type_ids"])] = torch.tensor(e["token_type_ids"])
        batch["token_type_ids"] = segments
    first = examples[0]["labels"]
    if isinstance(first, int):
        batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=torch.long)
    else:
        lab_width = max(len(e["labels"]) for e in examples)
        labels = torch.full((len(examples), lab_width), IGNORE, dtype=torch.long)
        for i, e in enumerate(examples):
            labels[i, : len(e["labels"])] = torch.tensor(e["labels"])
        batch["labels"] = labels
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _token_losses(
    logits: torch.Tensor, labels: torch.Tensor, shift: bool, smoothing: float = 0.0
) -> torch.Tensor:
    """Per-token cross-entropy (0 where the label is ignored), shape ``[batch, tokens]``."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    flat = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
        label_smoothing=smoothing,
    )
    return flat.view(labels.shape)


@dataclass
class TaskType:
    """Base: examples from rows, the training loss, per-example losses (for curricula) and evaluation."""

    name: str = ""
    shift_labels: bool = False
    label_names: list[Any] = field(default_factory=list)

    def encode(self, rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> list[Example]:
        raise NotImplementedError

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if not self.shift_labels and batch["labels"].dim() == 2:  # seq2seq: the decoder reads shifted labels
            inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        return model(**inputs).logits

    def example_losses(
        self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor], smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss per example, counted tokens per example) of one batch."""
        logits = self.forward(model, batch)
        losses = _token_losses(logits, batch["labels"], self.shift_labels, smoothing)
        labels = batch["labels"][:, 1:] if self.shift_labels else batch["labels"]
        return losses.sum(dim=1), (labels != IGNORE).sum(dim=1)

    def loss(
        self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor], smoothing: float = 0.0
    ) -> torch.Tensor:
        """Mean training loss of a batch (token-weighted for sequence outputs)."""
        total, count = self.example_losses(model, batch, smoothing)
        return total.sum() / count.sum().clamp(min=1)

    def evaluate(
        self, model: torch.nn.Module, batches: Callable[[], Any], tokenizer: Any, generate_max_length: int
    ) -> dict[str, float]:
        """Metrics over the batches yielded by ``batches()`` (a validation or test split)."""
        raise NotImplementedError

    def _loss_sum(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[float, int]:
        total, count = self.example_losses(model, batch)
        return float(total.sum()), int(count.sum())


class Classification(TaskType):
    def __init__(self, label_names: list[Any]) -> None:
        super().__init__("classification", False, label_names)
        self._index = {label: i for i, label in enumerate(label_names)}

    def label_id(self, value: Any, where: str) -> int:
        if value not in self._index:
            raise ConfigError(
                f"{where}: label {value!r} does not occur in the training data, whose labels are "
                f"{self.label_names}; check task.data.label"
            )
        return self._index[value]

    def encode(self, rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> list[Example]:
        """Token ids of each row's ``text``; a row with ``text_pair`` is encoded as the tokenizer's pair input
        (with segment ids where the tokenizer makes them), both texts truncated in turn (``longest_first``)."""
        texts = [str(r["text"]) for r in rows]
        pairs = [str(r["text_pair"]) for r in rows] if rows and "text_pair" in rows[0] else None
        encoded = tokenizer(texts, pairs, truncation="longest_first", max_length=max_length)
        segments = encoded.get("token_type_ids") if pairs is not None else None
        examples = []
        for n, (ids, row) in enumerate(zip(encoded["input_ids"], rows, strict=True)):
            example = {"input_ids": ids, "labels": self.label_id(row["label"], "task.data")}
            if segments is not None:
                example["token_type_ids"] = segments[n]
            examples.append(example)
        return examples

    def evaluate(
        self, model: torch.nn.Module, batches: Callable[[], Any], tokenizer: Any, generate_max_length: int
    ) -> dict[str, float]:
        preds: list[int] = []
        gold: list[int] = []
        total = 0.0
        for batch in batches():
            logits = self.forward(model, batch)
            total += float(F.cross_entropy(logits.float(), batch["labels"], reduction="sum"))
            preds.extend(logits.argmax(-1).tolist())
            gold.extend(batch["labels"].tolist())
        scores = {
            "accuracy": metrics.accuracy(preds, gold),
            "macro_f1": metrics.macro_f1(preds, gold, len(self.label_names)),
            "loss": total / max(len(gold), 1),
        }
        if len(self.label_names) == 2:  # the second label in sorted order (1 of 0/1) is the positive class
            scores["f1"] = metrics.binary_f1(preds, gold)
        return scores

    def example_losses(
        self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor], smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.forward(model, batch)
        losses = F.cross_entropy(logits.float(), batch["labels"], reduction="none", label_smoothing=smoothing)
        return losses, torch.ones_like(losses)


class CausalLM(TaskType):
    def __init__(self) -> None:
        super().__init__("causal-lm", True)

    def encode(self, rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> list[Example]:
        """Concatenate the texts (documents separated by the end-of-sequence token) and cut fixed-length
        blocks; the last, shorter block is kept so every token is scored."""
        eos = tokenizer.eos_token_id
        stream: list[int] = []
        for ids in tokenizer([str(r["text"]) for r in rows], add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
            if eos is not None:
                stream.append(eos)
        blocks = [stream[i : i + max_length] for i in range(0, len(stream), max_length)]
        return [{"input_ids": b, "labels": b} for b in blocks if len(b) > 1]

    def evaluate(
        self, model: torch.nn.Module, batches: Callable[[], Any], tokenizer: Any, generate_max_length: int
    ) -> dict[str, float]:
        total, count = 0.0, 0
        for batch in batches():
            loss, n = self._loss_sum(model, batch)
            total, count = total + loss, count + n
        return {"perplexity": metrics.perplexity(total, count), "loss": total / max(count, 1)}


class Translation(TaskType):
    def __init__(self) -> None:
        super().__init__("translation", False)

    def encode(self, rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> list[Example]:
        src = tokenizer([str(r["source"]) for r in rows], truncation=True, max_length=max_length)["input_ids"]
        tgt = tokenizer(text_target=[str(r["target"]) for r in rows], truncation=True, max_length=max_length)[
            "input_ids"
        ]
        return [{"input_ids": s, "labels": t} for s, t in zip(src, tgt, strict=True)]

    def evaluate(
        self, model: torch.nn.Module, batches: Callable[[], Any], tokenizer: Any, generate_max_length: int
    ) -> dict[str, float]:
        total, count = 0.0, 0
        hypotheses: list[str] = []
        references: list[str] = []
        for batch in batches():
            loss, n = self._loss_sum(model, batch)
            total, count = total + loss, count + n
            generated = model.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                max_new_tokens=generate_max_length,
                num_beams=1,
                do_sample=False,
            )
            hypotheses.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
            labels = batch["labels"].masked_fill(batch["labels"] == IGNORE, tokenizer.pad_token_id)
            references.extend(tokenizer.batch_decode(labels, skip_special_tokens=True))
        return {
            "bleu": metrics.corpus_bleu([h.strip() for h in hypotheses], [r.strip() for r in references]),
            "loss": total / max(count, 1),
        }


def task_type_for(name: str, train_labels: Sequence[Any] = ()) -> TaskType:
    """The :class:`TaskType` of a ``task.type``; classification labels are numbered in sorted order."""
    if name == "classification":
        return Classification(sorted(set(train_labels), key=lambda v: (str(type(v)), v)))
    if name == "causal-lm":
        return CausalLM()
    return Translation()
