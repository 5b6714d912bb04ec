"""The ``task:`` section of a study file, validated with pydantic; every error names ``task.<field>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lmtune.validation import Section, validate_section

__all__ = [
    "METRICS",
    "TASK_TYPES",
    "TRAINING_PARAMS",
    "DataSpec",
    "ModelSpec",
    "SplitNames",
    "TaskSpec",
    "parse_task_spec",
]

TASK_TYPES = ("classification", "causal-lm", "translation")
# metric -> direction, per task type; the first one is the default.
METRICS: dict[str, dict[str, str]] = {
    "classification": {"accuracy": "maximize", "macro_f1": "maximize", "f1": "maximize", "loss": "minimize"},
    "causal-lm": {"perplexity": "minimize", "loss": "minimize"},
    "translation": {"bleu": "maximize", "loss": "minimize"},
}
ARCHITECTURES = {"classification": ("bert",), "causal-lm": ("gpt2", "llama"), "translation": ("bart", "t5")}

# Names the training loop reads from ``trial.params`` (or ``task.training``), documented in docs/nlp.md.
TRAINING_PARAMS = frozenset(
    {
        "learning_rate",
        "batch_size",
        "epochs",
        "max_steps",
        "optimizer",
        "momentum",
        "nesterov",
        "beta1",
        "beta2",
        "eps",
        "adagrad_lr_decay",
        "weight_decay",
        "warmup_ratio",
        "warmup_steps",
        "lr_schedule",
        "lr_decay_rate",
        "dropout",
        "max_length",
        "finetune",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_target_modules",
        "num_layers",
        "hidden_size",
        "num_heads",
        "ffn_size",
        "grad_clip",
        "gradient_checkpointing",
        "curriculum",
        "group_by_length",
        "seed",
        "label_smoothing",
        # data augmentation strengths (lmtune.nlp.augment), searchable like any other parameter
        "augment_synonym",
        "augment_swap",
        "augment_deletion",
        "augment_insertion",
        "augment_copies",
    }
)


class _Strict(Section):
    """A ``task:`` section model: the study file's strict section rules (:class:`lmtune.validation.Section`)."""


class ModelSpec(_Strict):
    """Where the model comes from: exactly one of ``hub``, ``package``, ``path``, ``gguf`` or ``architecture``.

    A plain string (``model: bert-base-uncased``) means ``{hub: bert-base-uncased}``: a Hugging Face Hub id loaded
    through the Hugging Face cache, or a local folder written by ``save_pretrained``.
    """

    hub: str | None = Field(None, min_length=1, description="Hub id (ORG/NAME) or a save_pretrained folder")
    revision: str | None = Field(None, min_length=1, description="branch, tag or commit of a hub model")
    trust_remote_code: bool = False
    package: str | None = None
    path: str | None = None
    gguf: str | None = None
    architecture: str | None = None
    tokenizer: str | None = Field(None, description="tokenizer folder or package for a from-scratch model")
    vocab_size: int = Field(8000, ge=100, le=200_000)

    @model_validator(mode="before")
    @classmethod
    def _hub_name(cls, value: Any) -> Any:
        return {"hub": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        sources = ("hub", "package", "path", "gguf", "architecture")
        given = [k for k in sources if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(sources)}; got {given or 'none'}")
        if self.revision is not None and self.hub is None:
            raise ValueError("revision pins a hub model; use it with `hub: ORG/NAME`")
        return self


class SplitNames(_Strict):
    """Which split of a dataset is the training, validation and test split. A part left out takes its usual
    name where the dataset has it (``validation``, ``dev``, ...); ``null`` carves it out of train."""

    train: str = "train"
    validation: str | None = None
    test: str | None = None


class DataSpec(_Strict):
    """Where the rows come from and which columns to use.

    Exactly one source: files (``train``, and optionally ``validation`` / ``test``, relative to ``root``, itself
    relative to the study file), ``hub`` (anything ``datasets.load_dataset`` takes: a Hub id, a local dataset
    repository folder, or a packaged loader such as ``csv`` with ``data_files``) or ``dataset`` (a folder written
    by ``save_to_disk``). ``text`` is one column, or two for sentence pairs.
    """

    root: str = "."
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    format: Literal["csv", "tsv", "json", "jsonl", "text", "parquet"] | None = Field(
        None, description="file format when the suffix does not say it (e.g. a .txt file holding TSV)"
    )
    hub: str | None = Field(None, min_length=1)
    config: str | None = Field(None, min_length=1)
    revision: str | None = Field(None, min_length=1)
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    dataset: str | None = Field(None, min_length=1, description="a folder written by Dataset.save_to_disk")
    splits: SplitNames | None = None
    text: str | list[str] = "text"
    label: str = "label"
    source: str = "source"
    target: str = "target"
    max_train_examples: int | None = Field(None, ge=1)
    max_eval_examples: int | None = Field(None, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    split_seed: int = 0
    cleaning: dict[str, Any] | None = Field(
        None, description="options of lmtune.nlp.cleaning.CleaningOptions"
    )

    @field_validator("cleaning")
    @classmethod
    def _cleaning_options(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from lmtune.nlp.cleaning import CleaningOptions

            CleaningOptions.from_config(value)
        return value

    @field_validator("text")
    @classmethod
    def _one_or_two_columns(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not 1 <= len(value) <= 2:
            raise ValueError(
                "text is one column, or a list of two for sentence pairs ([sentence1, sentence2])"
            )
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("the two text columns of a pair must differ")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("train", "hub", "dataset") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one source of rows: train (files), hub (load_dataset) or dataset "
                f"(a save_to_disk folder); got {given or 'none'}"
            )
        if self.train is None and (self.validation is not None or self.test is not None):
            raise ValueError("validation and test files go with train files; for a dataset use `splits:`")
        if self.hub is None and any(v is not None for v in (self.config, self.revision, self.data_files)):
            raise ValueError(
                "config, revision and data_files describe a `hub:` dataset; add hub or remove them"
            )
        if self.train is not None and self.splits is not None:
            raise ValueError(
                "splits names the splits of a hub or dataset source; files use train/validation/test"
            )
        return self

    @property
    def text_columns(self) -> list[str]:
        """The text column, or both columns of a sentence pair."""
        return [self.text] if isinstance(self.text, str) else list(self.text)


class TaskSpec(_Strict):
    """The validated ``task:`` section."""

    type: Literal["classification", "causal-lm", "translation"]
    model: ModelSpec
    data: DataSpec
    metric: str | None = None
    direction: Literal["minimize", "maximize"] | None = None
    max_length: int = Field(128, ge=8, le=8192)
    training: dict[str, Any] = Field(default_factory=dict)
    eval_every_steps: int | None = Field(None, ge=1)
    patience: int | None = Field(3, ge=1)
    micro_batch_size: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    output_dir: str | None = None
    generate_max_length: int = Field(64, ge=4, le=1024)

    @field_validator("training")
    @classmethod
    def _known_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - TRAINING_PARAMS)
        if unknown:
            raise ValueError(f"unknown training parameter(s) {unknown}; known: {sorted(TRAINING_PARAMS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        metrics = METRICS[self.type]
        if self.metric is not None and self.metric not in metrics:
            raise ValueError(
                f"metric {self.metric!r} is not available for a {self.type} task; use one of {list(metrics)}"
            )
        direction = metrics[self.metric or next(iter(metrics))]
        if self.direction is not None and self.direction != direction:
            raise ValueError(
                f"direction {self.direction!r} contradicts metric {self.metric_name!r}, which is "
                f"{direction}d; drop `direction` or choose another metric"
            )
        arch = self.model.architecture
        if arch is not None and arch not in ARCHITECTURES[self.type]:
            raise ValueError(
                f"model.architecture {arch!r} cannot do {self.type}; use one of "
                f"{list(ARCHITECTURES[self.type])}"
            )
        if len(self.data.text_columns) == 2 and self.type != "classification":
            raise ValueError("data.text: sentence pairs are for classification; give one text column")
        if self.type == "translation" and arch is None:
            raise ValueError(
                "a translation task builds its model from a config: set model.architecture to "
                "bart or t5 (no pretrained encoder-decoder is available offline)"
            )
        return self

    @property
    def metric_name(self) -> str:
        return self.metric or next(iter(METRICS[self.type]))

    @property
    def metric_direction(self) -> str:
        return METRICS[self.type][self.metric_name]


def parse_task_spec(spec: Mapping[str, Any]) -> TaskSpec:
    """Validate a ``task:`` mapping; raise :class:`ConfigError` naming each bad field, value and the fix."""
    return validate_section(TaskSpec, spec, "task")
