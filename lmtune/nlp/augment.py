"""Data augmentation of the training split, with strengths that are hyperparameters of the study.

Token-level edits (synonym replacement from WordNet, random swap, deletion, insertion) change a fraction of the
words of a text; that fraction is the edit's *strength*, a search dimension like the learning rate
(``augment_synonym: {type: float, low: 0, high: 0.3}``). A user-given seq2seq model adds paraphrases or
back-translations. Augmentation only ever adds rows to the training split: :func:`augment_splits` returns the
validation and test splits untouched, so scores stay comparable between trials.

WordNet is read from the database files of Debian's ``wordnet-base`` package (``/usr/share/wordnet``, or the
folder named by ``$WORDNET_DIR``) with nltk's reader; nothing is downloaded.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError, MissingDependencyError

__all__ = [
    "AUGMENT_PARAMS",
    "AugmentOptions",
    "Seq2SeqParaphraser",
    "WordNetSynonyms",
    "augment_rows",
    "augment_splits",
    "augment_text",
    "random_deletion",
    "random_insertion",
    "random_swap",
    "synonym_replacement",
]

Row = dict[str, Any]
DEFAULT_WORDNET_DIR = "/usr/share/wordnet"  # where Debian's wordnet-base installs the database
WORDNET_INSTALL = (
    "apt-get install wordnet-base (or set WORDNET_DIR to a folder holding WordNet 3.0's dict files)"
)

# The 45 lexicographer file names in file-number order, as fixed by WordNet 3.0's ``lexnames`` format (see
# lexnames(5WN)). Debian ships the database without this small index file, which nltk's reader needs.
_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")
# Function words are never replaced or used as insertion seeds: their "synonyms" change the meaning.
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
    ]
)


@dataclass(frozen=True)
class AugmentOptions:
    """Strengths of the token edits (fractions of a text's words, 0 = off) and how many augmented copies of
    each training row to add."""

    synonym: float = 0.0
    swap: float = 0.0
    deletion: float = 0.0
    insertion: float = 0.0
    copies: int = 1

    def __post_init__(self) -> None:
        for f in ("synonym", "swap", "deletion", "insertion"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(
                    f"augment_{f} is the fraction of words edited and must be in [0, 1], but got {value!r}"
                )
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"augment_copies must be a non-negative integer, but got {self.copies!r}")

    @property
    def active(self) -> bool:
        return self.copies > 0 and any(
            getattr(self, f) > 0 for f in ("synonym", "swap", "deletion", "insertion")
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AugmentOptions:
        """Read ``augment_synonym``, ``augment_swap``, ``augment_deletion``, ``augment_insertion`` and
        ``augment_copies`` from a trial's parameters (or a ``task.training`` mapping); absent ones are off."""
        values = {f.name: params[f"augment_{f.name}"] for f in fields(cls) if f"augment_{f.name}" in params}
        return cls(**values)


#: The trial parameter names :meth:`AugmentOptions.from_params` reads.
AUGMENT_PARAMS = frozenset(f"augment_{f.name}" for f in fields(AugmentOptions))


class WordNetSynonyms:
    """Synonyms of English words from a WordNet 3.0 database folder, read with nltk's reader."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder or os.environ.get("WORDNET_DIR") or DEFAULT_WORDNET_DIR)
        if not (self.folder / "data.noun").is_file():
            raise MissingDependencyError(
                f"no WordNet database in {str(self.folder)!r} (data.noun is missing); "
                f"synonym augmentation needs it: {WORDNET_INSTALL}"
            )
        self._reader = _reader(str(self.folder))
        self._cache: dict[str, list[str]] = {}

    def synonyms(self, word: str) -> list[str]:
        """Single-word synonyms of ``word`` in any sense, sorted, without ``word`` itself."""
        lower = word.lower()
        if lower not in self._cache:
            self._cache[lower] = self._lookup(lower)
        return self._cache[lower]

    def _lookup(self, lower: str) -> list[str]:
        names = {
            lemma.name().replace("_", " ")
            for synset in self._reader.synsets(lower)
            for lemma in synset.lemmas()
        }
        return sorted(n for n in names if n.lower() != lower and " " not in n and "-" not in n)


@functools.lru_cache(maxsize=4)
def _reader(folder: str) -> Any:
    """nltk's WordNet reader over ``folder``, built once per folder (about 2 s)."""
    import warnings

    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if folder not in nltk.data.path:
        nltk.data.path.append(folder)  # nltk only reads folders on its data path

    class _FolderReader(WordNetCorpusReader):
        def open(self, file: str) -> Any:
            if file == "lexnames" and not (Path(folder) / "lexnames").is_file():
                return io.StringIO(
                    "".join(
                        f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n"
                        for i, name in enumerate(_LEXNAMES)
                    )
                )
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            return None  # the mapping to other WordNet versions serves multilingual data, which is not used

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return _FolderReader(folder, None)


def _editable(words: Sequence[str]) -> list[int]:
    return [i for i, w in enumerate(words) if _WORD.match(w) and w.lower() not in _STOP_WORDS]


def _count(strength: float, n_words: int) -> int:
    """How many edits a strength asks for: at least one when it is above zero and there are words."""
    return 0 if strength <= 0 or n_words == 0 else max(1, int(round(strength * n_words)))


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def synonym_replacement(
    words: Sequence[str], n: int, rng: np.random.Generator, wordnet: WordNetSynonyms
) -> list[str]:
    """Replace up to ``n`` content words that have WordNet synonyms by a random synonym each."""
    out = list(words)
    candidates = [i for i in rng.permutation(_editable(out)).tolist() if wordnet.synonyms(out[i])]
    for i in candidates[:n]:
        options = wordnet.synonyms(out[i])
        out[i] = _match_case(options[int(rng.integers(len(options)))], out[i])
    return out


def random_swap(words: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    """Swap the positions of two random words, ``n`` times."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.choice(len(out), size=2, replace=False).tolist()
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    """Delete ``n`` random words, always keeping at least one."""
    n = min(n, len(words) - 1)
    if n <= 0:
        return list(words)
    dropped = set(rng.choice(len(words), size=n, replace=False).tolist())
    return [w for i, w in enumerate(words) if i not in dropped]


def random_insertion(
    words: Sequence[str], n: int, rng: np.random.Generator, wordnet: WordNetSynonyms
) -> list[str]:
    """Insert a synonym of a random content word at a random position, ``n`` times."""
    out = list(words)
    seeds = [w for w in (out[i] for i in _editable(out)) if wordnet.synonyms(w)]
    if not seeds:
        return out
    for _ in range(n):
        options = wordnet.synonyms(seeds[int(rng.integers(len(seeds)))])
        out.insert(int(rng.integers(len(out) + 1)), options[int(rng.integers(len(options)))])
    return out


def augment_text(
    text: str, options: AugmentOptions, rng: np.random.Generator, wordnet: WordNetSynonyms | None = None
) -> str:
    """One augmented copy of ``text``: synonym replacement, insertion, swap, then deletion, each at its strength.

    Words are split on whitespace and joined with single spaces.
    """
    words = text.split()
    n_words = len(words)
    if (options.synonym > 0 or options.insertion > 0) and wordnet is None:
        wordnet = WordNetSynonyms()
    if options.synonym > 0:
        words = synonym_replacement(words, _count(options.synonym, n_words), rng, wordnet)  # type: ignore[arg-type]
    if options.insertion > 0:
        words = random_insertion(words, _count(options.insertion, n_words), rng, wordnet)  # type: ignore[arg-type]
    if options.swap > 0:
        words = random_swap(words, _count(options.swap, n_words), rng)
    if options.deletion > 0:
        words = random_deletion(words, _count(options.deletion, n_words), rng)
    return " ".join(words)


def augment_rows(
    rows: Sequence[Mapping[str, Any]],
    column: str | Sequence[str],
    options: AugmentOptions,
    seed: int,
    wordnet: WordNetSynonyms | None = None,
) -> list[Row]:
    """The rows followed by ``options.copies`` augmented copies of each (other columns, e.g. the label, kept).

    ``column`` is one text column or several (both texts of a sentence pair, each edited on its own). Copies
    identical to their source (too short to edit) are left out. Seeded: the same rows, options and seed give the
    same result.
    """
    if not options.active:
        return [dict(r) for r in rows]
    columns = [column] if isinstance(column, str) else list(column)
    if (options.synonym > 0 or options.insertion > 0) and wordnet is None:
        wordnet = WordNetSynonyms()
    rng = np.random.default_rng(seed)
    extra: list[Row] = []
    for _ in range(options.copies):
        for row in rows:
            texts = {c: augment_text(str(row[c]), options, rng, wordnet) for c in columns}
            if any(texts[c] != row[c] for c in columns):
                extra.append({**row, **texts})
    return [dict(r) for r in rows] + extra


def augment_splits(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    augment: Callable[[Sequence[Mapping[str, Any]]], list[Row]],
) -> dict[str, list[Row]]:
    """Apply ``augment`` to the ``train`` split only; every other split is returned as given (same row objects)."""
    if "train" not in splits:
        raise ConfigError(f"augmentation needs a 'train' split, but got {sorted(splits)}")
    return {name: (augment(rows) if name == "train" else list(rows)) for name, rows in splits.items()}


class Seq2SeqParaphraser:
    """Paraphrases or back-translations from a user-given seq2seq model (a transformers encoder-decoder).

    With ``back_model`` (and its tokenizer) a text goes through ``model`` into the pivot language and back; without
    it ``model`` is taken to be a paraphraser. Sampling with ``temperature`` > 0 is seeded through torch.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        back_model: Any = None,
        back_tokenizer: Any = None,
        max_length: int = 64,
        temperature: float = 0.0,
        batch_size: int = 16,
    ) -> None:
        if (back_model is None) != (back_tokenizer is None):
            raise ConfigError("back-translation needs both back_model and back_tokenizer")
        if max_length < 1 or batch_size < 1:
            raise ConfigError(
                f"max_length and batch_size must be positive, but got {max_length}, {batch_size}"
            )
        self.model, self.tokenizer = model, tokenizer
        self.back_model, self.back_tokenizer = back_model, back_tokenizer
        self.max_length, self.temperature, self.batch_size = max_length, temperature, batch_size

    def _generate(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> list[str]:
        import torch

        out: list[str] = []
        model.eval()
        device = next(model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            batch = tokenizer(
                list(texts[start : start + self.batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            ).to(device)
            sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {}
            with torch.no_grad():
                ids = model.generate(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    max_new_tokens=self.max_length,
                    **sampling,
                )
            out.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
        return out

    def __call__(self, texts: Sequence[str], seed: int = 0) -> list[str]:
        """One paraphrase per text."""
        import torch

        torch.manual_seed(seed)
        result = self._generate(self.model, self.tokenizer, texts)
        if self.back_model is not None:
            result = self._generate(self.back_model, self.back_tokenizer, result)
        return result

    def augment_rows(
        self, rows: Sequence[Mapping[str, Any]], column: str, fraction: float, seed: int
    ) -> list[Row]:
        """The rows followed by paraphrases of a seeded random ``fraction`` of them (empty or unchanged outputs
        are left out)."""
        if not 0 <= fraction <= 1:
            raise ConfigError(
                f"augment_paraphrase is a fraction of training rows in [0, 1], but got {fraction!r}"
            )
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.permutation(len(rows))[: int(round(fraction * len(rows)))].tolist())
        texts = self([str(rows[i][column]) for i in chosen], seed=seed) if chosen else []
        extra = [
            {**rows[i], column: t} for i, t in zip(chosen, texts, strict=True) if t and t != rows[i][column]
        ]
        return [dict(r) for r in rows] + extra
