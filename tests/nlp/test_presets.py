"""Presets are valid search spaces with priors, overridable one parameter at a time."""

from __future__ import annotations

import pytest

from lmtune.exceptions import ConfigError
from lmtune.nlp.presets import PRESETS, get_preset
from lmtune.nlp.spec import TRAINING_PARAMS
from lmtune.space import SearchSpace


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_spaces_of_known_training_parameters(name: str) -> None:
    space = SearchSpace.from_dict(get_preset(name))
    assert set(space) <= TRAINING_PARAMS
    assert all(space[p].prior is not None for p in space)


def test_encoder_preset_follows_published_bert_practice() -> None:
    space = SearchSpace.from_dict(get_preset("encoder-finetune"))
    lr = space["learning_rate"]
    assert (lr.low, lr.high, lr.log) == (1e-5, 1e-4, True) and 2e-5 <= lr.prior.value <= 5e-5
    assert space["batch_size"].choices == (16, 32, 64) or list(space["batch_size"].choices) == [16, 32, 64]


def test_override_and_conditions() -> None:
    merged = {**get_preset("causal-lm-finetune"), "epochs": {"type": "int", "low": 1, "high": 1}}
    space = SearchSpace.from_dict(merged)
    assert space["epochs"].high == 1
    assert not space.is_active("lora_r", {"finetune": "full"}) and space.is_active(
        "lora_r", {"finetune": "lora"}
    )
    get_preset("encoder-finetune")["learning_rate"]["low"] = 1.0  # a copy: the preset itself is unchanged
    assert get_preset("encoder-finetune")["learning_rate"]["low"] == 1e-5
    with pytest.raises(ConfigError, match="encoder-finetune"):
        get_preset("bert")
