"""A fine-tuning task built from the ``task:`` section of a study file: the objective of the study.

``load_task(spec, base_dir)`` validates the section and returns a :class:`Task`. Calling the task with a trial
trains a model with the trial's parameters and returns the best validation metric; ``provenance()`` says what
data and model were used; ``finalize(study)`` saves the best trial's model and scores it once on the test split.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from lmtune.exceptions import ConfigError, LmtuneError
from lmtune.nlp.augment import AugmentOptions, augment_rows
from lmtune.nlp.checkpoint import BEST, load_checkpoint
from lmtune.nlp.cleaning import CleaningOptions, DataSummary, clean_splits
from lmtune.nlp.curriculum import first_model_difficulty
from lmtune.nlp.data import Splits, expand_path, file_sha256, make_splits, read_rows, subsample
from lmtune.nlp.encode_cache import cached_encoding, encoding_key
from lmtune.nlp.hub import dataset_commit, load_disk_dataset, load_hub_dataset
from lmtune.nlp.hyperparameters import Hyperparameters
from lmtune.nlp.lora import apply_lora, merge_lora
from lmtune.nlp.models import (
    ModelSource,
    build_model,
    load_tokenizer,
    modeling_module,
    resolve_source,
    train_tokenizer,
)
from lmtune.nlp.spec import TaskSpec, parse_task_spec
from lmtune.nlp.tables import check_columns, check_labels, dataset_splits
from lmtune.nlp.task_types import TEXT_COLUMNS, Example, TaskType, task_type_for
from lmtune.nlp.training import TrainingSetup, TrialRunner, evaluate_model, free_memory

__all__ = ["Task", "load_task"]

logger = logging.getLogger("lmtune.nlp")

_PACKAGES = ("torch", "transformers", "tokenizers", "peft", "sacrebleu", "lmtune")
_SPLITS = ("train", "validation", "test")
ENCODED_FOLDER = "encoded"  # under the study's checkpoint root


def load_task(spec: Mapping[str, Any], base_dir: Path) -> Task:
    """Validate a ``task:`` section (paths relative to ``base_dir``, the study file's folder) and load its data.

    Raises :class:`ConfigError` naming the field (``task.data.train: ...``), the bad value and the fix.
    """
    parsed = parse_task_spec(spec)
    return Task(parsed, Path(base_dir))


class Task:
    """The objective of a fine-tuning study. Data are read and split on construction; the tokenizer and the
    encoded splits are prepared once and shared by all trials of this process."""

    def __init__(self, spec: TaskSpec, base_dir: Path) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.files = self._resolve_files()
        self.dataset_record: dict[str, Any] = {}
        self.data_summary: DataSummary | None = None
        self._difficulty: dict[tuple[int, int], Any] = {}
        self.splits = self._load_splits()
        self.source: ModelSource = resolve_source(spec.model, base_dir)
        labels = [r["label"] for r in self.splits.train] if spec.type == "classification" else []
        self.task_type: TaskType = task_type_for(spec.type, labels)
        if spec.type == "classification" and len(self.task_type.label_names) < 2:
            raise ConfigError(
                f"task.data.label: column {spec.data.label!r} has fewer than two classes in the "
                f"training data ({self.task_type.label_names}); check the column name"
            )
        if self.metric == "f1" and len(self.task_type.label_names) != 2:
            raise ConfigError(
                f"task.metric: f1 is the F1 of the positive class of a two-class task, but this task has "
                f"{len(self.task_type.label_names)} classes; use macro_f1"
            )
        self._encoded: dict[tuple[str, int], list[Example]] = {}
        self.encode_cache: Path | None = None  # a study's folder of encoded splits (set by the first trial)

    # Identity ---------------------------------------------------------------------------------------------------
    @property
    def direction(self) -> str:
        """``maximize`` or ``minimize``, from the metric."""
        return self.spec.metric_direction

    @property
    def metric(self) -> str:
        return self.spec.metric_name

    @property
    def device(self) -> torch.device:
        if self.spec.device == "cuda" or (self.spec.device == "auto" and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    def process_modules(self) -> tuple[str, ...]:
        """The modules a process imports to run this task's trials: a process pool imports them once, before it
        forks its trial processes."""
        model = modeling_module(self.source)
        return ("torch", "transformers", __name__, *([model] if model else []))

    def __repr__(self) -> str:
        return f"Task(type={self.spec.type!r}, model={self.source.name!r}, metric={self.metric!r})"

    # Data -------------------------------------------------------------------------------------------------------
    def _resolve_files(self) -> dict[str, Path]:
        data = self.spec.data
        root = expand_path(data.root, self.base_dir)
        files: dict[str, Path] = {}
        if data.train is None:  # rows come from a dataset, not files
            return files
        for split in _SPLITS:
            given = getattr(data, split)
            if given is None:
                continue
            path = expand_path(given, root)
            if not path.is_file():
                raise ConfigError(
                    f"task.data.{split}: file {str(path)!r} not found; paths are relative to "
                    f"task.data.root ({str(root)!r}), which is relative to the study file's folder"
                )
            files[split] = path
        return files

    def _columns(self) -> dict[str, str]:
        """Study-file column name -> internal name, per task type (a sentence pair's second text: ``text_pair``)."""
        data = self.spec.data
        if self.spec.type == "classification":
            return {**dict(zip(data.text_columns, TEXT_COLUMNS, strict=False)), data.label: "label"}
        if self.spec.type == "causal-lm":
            return {data.text_columns[0]: "text"}
        return {data.source: "source", data.target: "target"}

    def _fields(self) -> dict[str, str]:
        """Study-file field (``task.data.text[1]``) -> column name, for errors."""
        data, fields = self.spec.data, {}
        for column, name in self._columns().items():
            pair = name in TEXT_COLUMNS and len(data.text_columns) == 2
            fields[f"task.data.text[{TEXT_COLUMNS.index(name)}]" if pair else f"task.data.{name}"] = column
        return fields

    def _raw_splits(self) -> dict[str, tuple[list[dict[str, Any]] | None, str, str]]:
        """Rows of each split as read (before column selection), with the field they come from and their name
        in messages (the file name, or the dataset's split)."""
        data = self.spec.data
        if data.train is not None:
            read = {}
            for split in _SPLITS:
                path = self.files.get(split)
                rows = None if path is None else read_rows(path, data.format)
                if rows is not None and not rows:
                    raise ConfigError(f"task.data.{split}: file {str(path)!r} holds no rows")
                read[split] = (rows, f"task.data.{split}", path.name if path else "")
            return read
        if data.hub is not None:
            dataset = load_hub_dataset(data.hub, data.config, data.revision, data.data_files, self.base_dir)
            source = f"dataset {data.hub!r}" + (f" (config {data.config!r})" if data.config else "")
        else:
            assert data.dataset is not None
            dataset = load_disk_dataset(data.dataset, self.base_dir)
            source = f"dataset folder {data.dataset!r}"
        rows, record = dataset_splits(dataset, data.splits, source)
        self.dataset_record = {
            "source": "hub" if data.hub is not None else "save_to_disk",
            "name": data.hub or data.dataset,
            "config": data.config,
            "revision": data.revision,
            "commit": dataset_commit(dataset),
            "splits": record,
        }
        return {
            split: (
                rows[split],
                f"task.data.splits.{split}",
                f"split {record.get(split, {}).get('split')!r} of {source}",
            )
            for split in _SPLITS
        }

    def _select(self, rows: list[dict[str, Any]] | None, where: str) -> list[dict[str, Any]] | None:
        if rows is None:
            return None
        columns = self._columns()
        check_columns(rows, self._fields(), where)
        return [{name: row[column] for column, name in columns.items()} for row in rows]

    def _load_splits(self) -> Splits:
        data = self.spec.data
        text_like = self.spec.type == "causal-lm"
        raw = self._raw_splits()
        given = {split: self._select(rows, name) for split, (rows, _, name) in raw.items()}
        self._split_fields = {split: field for split, (_, field, _) in raw.items()}
        splits = make_splits(
            given["train"] or [],
            given["validation"],
            given["test"],
            validation_fraction=data.validation_fraction,
            test_fraction=data.test_fraction,
            seed=data.split_seed,
            label="label" if self.spec.type == "classification" else None,
            contiguous=text_like,
        )
        splits = Splits(
            subsample(splits.train, data.max_train_examples, data.split_seed, keep_order=text_like),
            subsample(splits.validation, data.max_eval_examples, data.split_seed, keep_order=text_like),
            splits.test,
        )
        if self.spec.type == "classification":
            known = {r["label"] for r in splits.train}
            for split in ("validation", "test"):
                check_labels((r["label"] for r in getattr(splits, split)), known, self._split_fields[split])
        empty = [name for name in _SPLITS if not getattr(splits, name)]
        if empty:
            sizes = ", ".join(f"{name} {len(getattr(splits, name))}" for name in _SPLITS)
            raise ConfigError(
                f"task.data: the {' and '.join(empty)} split would hold no rows ({sizes}); give more rows, "
                f"larger task.data.validation_fraction / test_fraction, or separate validation and test files"
            )
        return self._clean(splits)

    def _clean(self, splits: Splits) -> Splits:
        """Apply ``task.data.cleaning`` (when given) and print the data summary before tuning starts."""
        if self.spec.data.cleaning is None:
            return splits
        columns = self._text_columns()
        label = "label" if self.spec.type == "classification" else None
        cleaned, self.data_summary = clean_splits(
            {"train": splits.train, "validation": splits.validation, "test": splits.test},
            columns,
            CleaningOptions.from_config(self.spec.data.cleaning),
            label,
        )
        print(self.data_summary.format(), flush=True)
        return Splits(cleaned["train"], cleaned["validation"], cleaned["test"])

    def _text_columns(self) -> list[str]:
        """The internal text columns of a row: cleaned, deduplicated and augmented together."""
        if self.spec.type == "translation":
            return ["source", "target"]
        return (
            list(TEXT_COLUMNS[: len(self.spec.data.text_columns)])
            if self.spec.type == "classification"
            else ["text"]
        )

    # Model and encodings ----------------------------------------------------------------------------------------
    @functools.cached_property
    def tokenizer(self) -> Any:
        if self.source.kind == "scratch" and self.source.tokenizer_path is None:
            rows = self.splits.train
            texts = [r[c] for c in self._text_columns() for r in rows]
            return train_tokenizer(texts, self.spec.model.vocab_size, wrap=self.spec.type != "causal-lm")
        return load_tokenizer(self.source)

    def encoded(self, split: str, max_length: int) -> list[Example]:
        """The examples of ``split`` at ``max_length`` tokens: encoded once per length in this process, and once
        per study where :attr:`encode_cache` is set (every process of the study reads that folder)."""
        key = (split, max_length)
        if key not in self._encoded:
            rows = getattr(self.splits, split)

            def encode() -> list[Example]:
                return self.task_type.encode(rows, self.tokenizer, max_length)

            if self.encode_cache is None:
                self._encoded[key] = encode()
            else:
                name = encoding_key(self.task_type.name, self.tokenizer, max_length, rows)
                self._encoded[key] = cached_encoding(self.encode_cache, name, encode)
        return self._encoded[key]

    def build(self, hp: Hyperparameters, max_length: int) -> torch.nn.Module:
        """A fresh model for ``hp``: the base (pretrained or from config), LoRA if asked, on the task's device."""
        labels = len(self.task_type.label_names) or 2
        model = build_model(self.source, self.spec.type, asdict(hp), self.tokenizer, max_length, labels)
        if hp.gradient_checkpointing:
            # transformers 5 renamed gradient_checkpointing_enable; take whichever this version has
            enable = (
                getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            )
            enable()
            model.config.use_cache = False
        if hp.finetune == "lora":
            if hp.gradient_checkpointing:
                model.enable_input_require_grads()
            model = apply_lora(model, self.spec.type, asdict(hp))
        return model.to(self.device)

    def setup(self, max_length: int) -> TrainingSetup:
        return TrainingSetup(
            task_type=self.task_type,
            train=self.encoded("train", max_length),
            validation=self.encoded("validation", max_length),
            tokenizer=self.tokenizer,
            build_model=lambda hp: self.build(hp, max_length),
            metric=self.metric,
            direction=self.direction,
            device=self.device,
            eval_every_steps=self.spec.eval_every_steps,
            patience=self.spec.patience,
            micro_batch_size=self.spec.micro_batch_size,
            generate_max_length=self.spec.generate_max_length,
        )

    # The objective ----------------------------------------------------------------------------------------------
    def __call__(self, trial: Any) -> float:
        """Train with the trial's parameters (over ``task.training``); return the best validation metric."""
        params = {**self.spec.training, **trial.params}
        hp = Hyperparameters.from_params(params)
        max_length = int(hp.max_length or self.spec.max_length)
        if self.encode_cache is None and hasattr(trial, "study"):
            self.encode_cache = Path(trial.study.checkpoint_root) / ENCODED_FOLDER
        return TrialRunner(
            self._prepared(self.setup(max_length), params, hp, max_length), hp, trial, params
        ).run()

    def _prepared(
        self, setup: TrainingSetup, params: Mapping[str, Any], hp: Hyperparameters, max_length: int
    ) -> TrainingSetup:
        """The trial's training data: augmented with the trial's ``augment_*`` strengths (training rows only) and
        ordered by first-model difficulty for ``curriculum: first_model``."""
        rows = self.splits.train
        options = AugmentOptions.from_params(params)
        if options.active and self.spec.type != "causal-lm":
            columns = ["source"] if self.spec.type == "translation" else self._text_columns()
            rows = augment_rows(rows, columns, options, seed=int(hp.seed))
            setup = replace(setup, train=self.task_type.encode(rows, self.tokenizer, max_length))
        if hp.curriculum == "first_model":
            if self.spec.type != "classification":
                raise ConfigError(
                    "curriculum first_model scores examples with a classifier; use it for "
                    "classification tasks, or curriculum: shortest / easiest"
                )
            key = (id(rows), int(hp.seed))
            if key not in self._difficulty:  # one first model per training set and seed, not per trial
                self._difficulty = {
                    key: first_model_difficulty(
                        [r["text"] for r in rows], [r["label"] for r in rows], seed=int(hp.seed)
                    )
                }
            setup = replace(setup, difficulty=self._difficulty[key].tolist())
        return setup

    # Provenance and the final model ------------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """Data files (as written in the study file, with SHA-256 and row counts), split sizes, the model's
        identity and the package versions, to be stored with the study."""
        data = self.spec.data
        files = {
            split: {"file": getattr(data, split), "sha256": file_sha256(path)}
            for split, path in self.files.items()
        }
        versions = {}
        for name in _PACKAGES:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = None
        return {
            "task": self.spec.type,
            "metric": self.metric,
            "data": files or {"dataset": self.dataset_record},
            "split_sizes": self.splits.sizes(),
            "model": self.source.identity(),
            "packages": versions,
        }

    def _output_dir(self, study: Any) -> Path:
        if self.spec.output_dir is not None:
            return expand_path(self.spec.output_dir, self.base_dir)
        return Path(study.checkpoint_root) / "best_model"

    def load_best(self, study: Any) -> tuple[torch.nn.Module, dict[str, Any], int]:
        """The best trial's model (LoRA merged), its parameters and max length, rebuilt from its best checkpoint."""
        try:
            best = study.best_trial
        except ValueError:
            raise LmtuneError(
                f"study {study.study_name!r} has no COMPLETE trial, so there is no best model to "
                f"save; look at the failure reasons of its trials"
            ) from None
        if not best.checkpoint_dir or not (Path(best.checkpoint_dir) / BEST).is_dir():
            raise ConfigError(f"trial {best.number} has no saved checkpoint; was it run by this task?")
        tensors, meta = load_checkpoint(Path(best.checkpoint_dir) / BEST)
        params = meta["params"]
        hp = Hyperparameters.from_params(params)
        max_length = int(hp.max_length or self.spec.max_length)
        model = self.build(hp, max_length)
        model.load_state_dict(tensors["model"], strict=False)
        return merge_lora(model), params, max_length

    def finalize(self, study: Any) -> dict[str, Any]:
        """Save the best trial's model and tokenizer (``save_pretrained``) with its parameters and scores, and
        evaluate it once on the test split. Returns a JSON-able summary (validation and test scores apart)."""
        model, params, max_length = self.load_best(study)
        best = study.best_trial
        scores = {
            split: evaluate_model(
                self.task_type,
                model,
                self.encoded(split, max_length),
                self.tokenizer,
                self.device,
                generate_max_length=self.spec.generate_max_length,
            )
            for split in ("validation", "test")
        }
        out = self._output_dir(study)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        summary = {
            "study": study.study_name,
            "best_trial": best.number,
            "metric": self.metric,
            "direction": self.direction,
            "params": params,
            "validation_value": best.value,
            "validation": scores["validation"],
            "test": scores["test"],
            "output_dir": str(out),
            "split_sizes": self.splits.sizes(),
        }
        (out / "lmtune_result.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        del model
        free_memory(self.device)
        return summary
