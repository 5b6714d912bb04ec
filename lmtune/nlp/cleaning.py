"""Cleaning text datasets before tuning: normalisation, empty rows, duplicates, conflicting labels, leakage.

Each step is an option of :class:`CleaningOptions`. :func:`clean_splits` applies them to every split, counts what
each step found or removed, and checks that no text of the training split appears in the validation or test split
(leakage). The counts form a :class:`DataSummary`, printed before tuning so a user sees what the data holds.

Two texts are *exact* duplicates when they are equal after normalisation, and *near* duplicates when they differ
only in case, accents, punctuation, markup or spacing (their :func:`near_key` is equal).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = [
    "CleaningOptions",
    "DataSummary",
    "SplitReport",
    "clean_rows",
    "clean_splits",
    "find_conflicts",
    "find_duplicates",
    "find_leakage",
    "near_key",
    "normalize_text",
]

Row = dict[str, Any]

UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
CONFLICT_ACTIONS = ("report", "drop")
LEAKAGE_ACTIONS = ("report", "drop")
EVALUATION_SPLITS = ("validation", "test")

_TAG = re.compile(r"<[^<>]{0,200}>")
_SPACES = re.compile(r"\s+")
# Zero-width characters and the byte-order mark: invisible, so two texts that look equal may differ by them.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# Unicode categories removed by ``strip_special``: control, format, private-use, unassigned, surrogate and "other"
# symbols (emoji, dingbats); letters, digits, punctuation, currency and maths signs are kept.
_SPECIAL_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "So"})
# Combining marks (accents after NFKD decomposition) and everything that is not a letter or digit, for near_key.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class CleaningOptions:
    """Which cleaning steps run. The defaults change no meaning: NFKC, tidy spacing, drop empty rows and exact
    duplicates, and report (not drop) near duplicates, conflicting labels and leakage."""

    unicode_form: str | None = "NFKC"
    whitespace: bool = True
    lowercase: bool = False
    strip_markup: bool = False
    strip_special: bool = False
    drop_empty: bool = True
    drop_duplicates: bool = True
    drop_near_duplicates: bool = False
    conflicts: str = "report"
    leakage: str = "report"

    def __post_init__(self) -> None:
        if self.unicode_form is not None and self.unicode_form not in UNICODE_FORMS:
            raise ConfigError(
                f"cleaning.unicode_form must be one of {list(UNICODE_FORMS)} or null, "
                f"but got {self.unicode_form!r}"
            )
        if self.conflicts not in CONFLICT_ACTIONS:
            raise ConfigError(
                f"cleaning.conflicts must be one of {list(CONFLICT_ACTIONS)}, but got {self.conflicts!r}"
            )
        if self.leakage not in LEAKAGE_ACTIONS:
            raise ConfigError(
                f"cleaning.leakage must be one of {list(LEAKAGE_ACTIONS)}, but got {self.leakage!r}"
            )
        for name in (
            "whitespace",
            "lowercase",
            "strip_markup",
            "strip_special",
            "drop_empty",
            "drop_duplicates",
            "drop_near_duplicates",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"cleaning.{name} must be true or false, but got {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CleaningOptions:
        """Build from a study file's ``cleaning:`` mapping; unknown keys are a :class:`ConfigError`."""
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ConfigError(f"cleaning must be a mapping like {{lowercase: true}}, but got {config!r}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"cleaning.{unknown[0]} is not a cleaning option; the options are {sorted(known)}"
            )
        return cls(**dict(config))


def normalize_text(text: str, options: CleaningOptions) -> str:
    """Apply the text-changing steps of ``options`` to one text, in a fixed order: markup, Unicode form, special
    characters, case, spacing."""
    if options.strip_markup:
        text = _TAG.sub(" ", html.unescape(text))
    if options.unicode_form is not None:
        text = unicodedata.normalize(options.unicode_form, text)
    if options.strip_special:
        text = "".join(
            " " if ch in "\t\n\r" else ch
            for ch in text
            if ch in "\t\n\r" or unicodedata.category(ch) not in _SPECIAL_CATEGORIES
        )
    if options.lowercase:
        text = text.lower()
    if options.whitespace:
        text = _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()
    return text


def near_key(text: str) -> str:
    """A key equal for texts that differ only in case, accents, punctuation, markup or spacing."""
    text = unicodedata.normalize("NFKD", _TAG.sub(" ", html.unescape(text))).casefold()
    return " ".join(_NON_WORD.sub(" ", _COMBINING.sub("", text)).split())


def _text_key(row: Mapping[str, Any], columns: Sequence[str]) -> Hashable:
    return row[columns[0]] if len(columns) == 1 else tuple(row[c] for c in columns)


def _near_of(row: Mapping[str, Any], columns: Sequence[str]) -> Hashable:
    return tuple(near_key(str(row[c])) for c in columns)


def find_duplicates(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> tuple[list[int], list[int]]:
    """Indices of rows that repeat an earlier row: ``(exact, near)``. A near duplicate is not an exact one."""
    seen_exact: set[Hashable] = set()
    seen_near: set[Hashable] = set()
    exact: list[int] = []
    near: list[int] = []
    for i, row in enumerate(rows):
        key, loose = _text_key(row, columns), _near_of(row, columns)
        if key in seen_exact:
            exact.append(i)
        elif loose in seen_near:
            near.append(i)
        seen_exact.add(key)
        seen_near.add(loose)
    return exact, near


def find_conflicts(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], label: str
) -> dict[Hashable, set]:
    """Texts that occur with more than one label: text (or tuple of texts) -> the labels seen."""
    labels: dict[Hashable, set] = defaultdict(set)
    for row in rows:
        labels[_text_key(row, columns)].add(row[label])
    return {text: seen for text, seen in labels.items() if len(seen) > 1}


def find_leakage(
    train: Sequence[Mapping[str, Any]],
    other: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    near: bool = False,
) -> set[Hashable]:
    """Texts of ``other`` (validation or test) that also occur in ``train``; with ``near`` compared by
    :func:`near_key`."""
    key = (lambda r: _near_of(r, columns)) if near else (lambda r: _text_key(r, columns))
    train_keys = {key(r) for r in train}
    return {key(r) for r in other if key(r) in train_keys}


@dataclass(frozen=True)
class SplitReport:
    """What cleaning found in one split: row counts before and after, and what each step removed or saw."""

    rows_in: int
    rows_out: int
    changed: int = 0
    empty: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    conflicting_texts: int = 0
    conflicting_rows_dropped: int = 0
    leaked_rows_dropped: int = 0
    labels: Mapping[str, int] = field(default_factory=dict)
    mean_words: float = 0.0


def clean_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | str,
    options: CleaningOptions | None = None,
    label: str | None = None,
) -> tuple[list[Row], SplitReport]:
    """Clean one split: normalise ``columns``, then drop empty rows, conflicting labels and duplicates as asked.

    Returns the kept rows (copies, in input order) and a report. Duplicates keep their first occurrence; conflicts
    are found before deduplication, so a text seen with two labels is reported even when one copy is dropped.
    """
    options = options or CleaningOptions()
    columns = [columns] if isinstance(columns, str) else list(columns)
    _check_columns(rows, [*columns, *([label] if label else [])])
    cleaned: list[Row] = []
    changed = 0
    for row in rows:
        new = dict(row)
        for c in columns:
            new[c] = normalize_text("" if row[c] is None else str(row[c]), options)
            changed += new[c] != row[c]
        cleaned.append(new)
    nonempty = [r for r in cleaned if all(r[c] for c in columns)]
    empty = len(cleaned) - len(nonempty)
    if options.drop_empty:
        cleaned = nonempty
    conflicts = find_conflicts(cleaned, columns, label) if label else {}
    conflicting_dropped = 0
    if conflicts and options.conflicts == "drop":
        kept = [r for r in cleaned if _text_key(r, columns) not in conflicts]
        conflicting_dropped = len(cleaned) - len(kept)
        cleaned = kept
    exact, near = find_duplicates(cleaned, columns)
    drop = set(exact) if options.drop_duplicates else set()
    if options.drop_near_duplicates:
        drop |= set(near)
    cleaned = [r for i, r in enumerate(cleaned) if i not in drop]
    report = SplitReport(
        rows_in=len(rows),
        rows_out=len(cleaned),
        changed=changed,
        empty=empty,
        exact_duplicates=len(exact),
        near_duplicates=len(near),
        conflicting_texts=len(conflicts),
        conflicting_rows_dropped=conflicting_dropped,
        labels=_label_counts(cleaned, label),
        mean_words=_mean_words(cleaned, columns),
    )
    return cleaned, report


def _check_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    for number, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise ConfigError(
                f"row {number} has no column {missing[0]!r}; its columns are {sorted(row)}; "
                f"name the right column in the task's data section"
            )


def _label_counts(rows: Sequence[Mapping[str, Any]], label: str | None) -> dict[str, int]:
    if not label:
        return {}
    counts = Counter(str(r[label]) for r in rows)
    return dict(sorted(counts.items()))


def _mean_words(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> float:
    if not rows:
        return 0.0
    return sum(len(str(r[columns[0]]).split()) for r in rows) / len(rows)


@dataclass(frozen=True)
class DataSummary:
    """Per-split cleaning reports and the leakage found between training and evaluation splits."""

    splits: Mapping[str, SplitReport]
    leakage: Mapping[str, int] = field(default_factory=dict)
    near_leakage: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored with the study."""
        return {
            "splits": {
                name: {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in vars(r).items()}
                for name, r in self.splits.items()
            },
            "leakage": dict(self.leakage),
            "near_leakage": dict(self.near_leakage),
        }

    def format(self) -> str:
        """The text table printed before tuning."""
        names = list(self.splits)
        lines = ["data summary", f"  {'':28}" + "".join(f"{n:>12}" for n in names)]
        rows = [
            ("rows read", "rows_in"),
            ("rows kept", "rows_out"),
            ("texts changed by cleaning", "changed"),
            ("empty rows", "empty"),
            ("exact duplicates", "exact_duplicates"),
            ("near duplicates", "near_duplicates"),
            ("texts with conflicting labels", "conflicting_texts"),
            ("conflicting rows dropped", "conflicting_rows_dropped"),
            ("leaked rows dropped", "leaked_rows_dropped"),
        ]
        for title, attr in rows:
            lines.append(f"  {title:28}" + "".join(f"{getattr(self.splits[n], attr):>12,}" for n in names))
        lines.append(
            f"  {'mean words per text':28}" + "".join(f"{self.splits[n].mean_words:>12.1f}" for n in names)
        )
        labels = sorted({lab for r in self.splits.values() for lab in r.labels})
        for lab in labels:
            lines.append(
                f"  {'label ' + lab:28}" + "".join(f"{self.splits[n].labels.get(lab, 0):>12,}" for n in names)
            )
        for other in self.leakage:
            lines.append(
                f"  train/{other} leakage: {self.leakage[other]:,} shared texts, "
                f"{self.near_leakage.get(other, 0):,} near-identical"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def clean_splits(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    columns: Sequence[str] | str,
    options: CleaningOptions | None = None,
    label: str | None = None,
) -> tuple[dict[str, list[Row]], DataSummary]:
    """Clean every split and check the evaluation splits (``validation``, ``test``) against ``train``.

    With ``options.leakage == "drop"`` training rows whose text occurs in an evaluation split are removed from
    training (never from the evaluation split, whose results must stay comparable).
    """
    options = options or CleaningOptions()
    columns = [columns] if isinstance(columns, str) else list(columns)
    if "train" not in splits:
        raise ConfigError(f"clean_splits needs a 'train' split, but got {sorted(splits)}")
    cleaned: dict[str, list[Row]] = {}
    reports: dict[str, SplitReport] = {}
    for name, rows in splits.items():
        cleaned[name], reports[name] = clean_rows(rows, columns, options, label)
    leakage: dict[str, int] = {}
    near_leakage: dict[str, int] = {}
    shared_keys: set[Hashable] = set()
    for other in (n for n in cleaned if n != "train"):
        shared = find_leakage(cleaned["train"], cleaned[other], columns)
        leakage[other] = len(shared)
        near_leakage[other] = len(find_leakage(cleaned["train"], cleaned[other], columns, near=True))
        shared_keys |= shared
    if options.leakage == "drop" and shared_keys:
        kept = [r for r in cleaned["train"] if _text_key(r, columns) not in shared_keys]
        reports["train"] = replace(
            reports["train"],
            rows_out=len(kept),
            leaked_rows_dropped=len(cleaned["train"]) - len(kept),
            labels=_label_counts(kept, label),
        )
        cleaned["train"] = kept
    return cleaned, DataSummary(reports, leakage, near_leakage)
