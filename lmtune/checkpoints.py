"""Trial checkpoints: where each trial's folder lies, a study-wide disk budget, and PBT's copy of a parent's
checkpoint.

Each study has its own checkpoint root (:func:`default_checkpoint_root`: the study name and id, so two studies
never share one) and each trial a folder in it (:func:`checkpoint_folder`). A root remembers the study that owns
it; another study refuses to write into it.

Only checkpoints that can still matter are kept, and the rest are deleted as soon as a trial finishes:

* those of unfinished trials (RUNNING, WAITING, and PAUSED ones a scheduler may promote),
* any checkpoint an unfinished trial will load (its ``resume_from``: a retried or PBT trial),
* the best COMPLETE trial's, and the next best up to ``keep_best`` while the finished trials' checkpoints stay
  under ``max_bytes`` (unfinished trials' come on top, so what is left at the end does not depend on timing).

PRUNED and FAILED trials' checkpoints go at once unless one of the rules above needs them. What to delete is a pure
function of the trial records and folder sizes (:meth:`CheckpointBudget.plan`); :func:`collect_garbage` carries it
out and marks each deleted folder in the trial (:attr:`~lmtune.trial.TrialRecord.checkpoint_deleted`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.trial import CHECKPOINT_DELETED, CHECKPOINT_DIR, RESUME_FROM, TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = [
    "CheckpointBudget",
    "checkpoint_folder",
    "claim_root",
    "collect_garbage",
    "default_checkpoint_root",
    "directory_size",
    "inherit_checkpoint",
]

logger = logging.getLogger("lmtune")

_UNFINISHED = (TrialState.RUNNING, TrialState.WAITING, TrialState.PAUSED)
OWNER_FILE = ".lmtune-study.json"  # in a checkpoint root: the storage URL and study that own it


def checkpoint_folder(root: Path, number: int) -> Path:
    """Trial ``number``'s checkpoint folder under its study's checkpoint ``root``."""
    return Path(root) / f"trial_{number:05d}"


def default_checkpoint_root(storage_url: str, study_name: str, study_id: int) -> Path:
    """A study's checkpoint root when none is given: beside a SQLite file (``FILE_checkpoints/``), under
    ``lmtune_checkpoints/`` in the working directory for a server database, a new temporary folder for an
    in-memory study. The folder name is the study name made safe for file systems, then the study id, so two
    studies whose names read alike once made safe ("ck a", "ck_a") never share a folder."""
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name)
    if storage_url.startswith("memory") or storage_url in ("sqlite://", "sqlite:///:memory:"):
        return Path(tempfile.mkdtemp(prefix=f"lmtune-{safe_name}-"))
    folder = f"{safe_name}-{study_id}"
    if storage_url.startswith("sqlite:///"):
        db = Path(storage_url[len("sqlite:///") :])
        return db.parent / f"{db.stem}_checkpoints" / folder
    return Path.cwd() / "lmtune_checkpoints" / folder


def claim_root(root: Path, storage_url: str, study_name: str) -> None:
    """Mark ``root`` as the checkpoint root of this study, or refuse when another study owns it: its trials'
    folders would overwrite theirs, and the checkpoint budget would delete them."""
    owner = {"storage": _without_password(storage_url), "study": study_name}
    marker = Path(root) / OWNER_FILE
    found = _read_owner(marker)
    if found == owner:
        return
    if found is not None:
        raise ConfigError(
            f"checkpoint folder {root} belongs to study {found.get('study')!r} in {found.get('storage')}; "
            f"give study {study_name!r} its own checkpoint_root"
        )
    Path(root).mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(owner) + "\n")


def _without_password(url: str) -> str:
    """``url`` with any password masked: the owner file is plain text beside the checkpoints."""
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def _read_owner(marker: Path) -> dict[str, str] | None:
    """The owner a checkpoint root records; None when it records none (or an unreadable one)."""
    try:
        found = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def directory_size(path: Path) -> int:
    """Bytes of all files under ``path`` (0 when it does not exist)."""
    if not path.is_dir():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _live_checkpoint(record: TrialRecord) -> bool:
    return bool(record.checkpoint_dir) and not record.checkpoint_deleted


@dataclass(frozen=True)
class CheckpointBudget:
    """Keep the ``keep_best`` best COMPLETE trials' checkpoints within ``max_bytes`` (None: no size limit) besides
    the ones unfinished trials need, which do not count against it; the best one and the needed ones are kept even
    beyond ``max_bytes``."""

    keep_best: int = 3
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.keep_best, bool) or not isinstance(self.keep_best, int) or self.keep_best < 1:
            raise ConfigError(f"checkpoints.keep_best must be an integer >= 1, but got {self.keep_best!r}")
        if self.max_bytes is not None and (
            isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 0
        ):
            raise ConfigError(
                f"checkpoints.max_bytes must be a non-negative integer, but got {self.max_bytes!r}"
            )

    def needed(self, history: TrialHistory) -> set[int]:
        """Trial numbers whose checkpoints must stay whatever the size: unfinished trials, the checkpoints they
        will load, and the best COMPLETE trial."""
        keep = {r.number for r in history if r.state in _UNFINISHED}
        loaded = {str(r.resume_from) for r in history if r.state in _UNFINISHED}
        keep |= {r.number for r in history if r.checkpoint_dir in loaded}
        best = history.best()
        if best is not None:
            keep.add(best.number)
        return keep

    def plan(self, history: TrialHistory, sizes: Mapping[int, int]) -> list[int]:
        """Numbers of the trials whose checkpoint folders to delete now, given folder ``sizes`` in bytes.

        ``max_bytes`` bounds the finished trials' checkpoints, the ones left when the study ends; unfinished trials'
        come on top while they run or wait. Counting those too would make what is left depend on timing: a good
        trial finishing beside a running one would lose its checkpoint for good, even if the running one ends
        worse."""
        live = [r for r in history if _live_checkpoint(r)]
        keep = self.needed(history)
        total = sum(sizes.get(r.number, 0) for r in live if r.number in keep and r.state not in _UNFINISHED)
        if self.max_bytes is not None and total > self.max_bytes:
            logger.warning(
                "checkpoints that the best trial or unfinished trials' resumes need take %d bytes, over the "
                "budget of %d",
                total,
                self.max_bytes,
            )
        for record in history.ranked()[: self.keep_best]:
            size = sizes.get(record.number, 0)
            if record.number not in keep and (self.max_bytes is None or total + size <= self.max_bytes):
                keep.add(record.number)
                total += size
        return [r.number for r in live if r.number not in keep]


def collect_garbage(study: Study, budget: CheckpointBudget) -> list[int]:
    """Delete the checkpoint folders ``budget`` does not keep; return their trial numbers."""
    history = study.history()
    by_number = {r.number: r for r in history if _live_checkpoint(r)}
    sizes = {n: directory_size(Path(str(r.checkpoint_dir))) for n, r in by_number.items()}
    deleted = budget.plan(history, sizes)
    for number in deleted:
        record = by_number[number]
        shutil.rmtree(str(record.checkpoint_dir), ignore_errors=True)
        study.storage.set_trial_system_attr(record.trial_id, CHECKPOINT_DELETED, True)
    if deleted:
        logger.info(
            "deleted the checkpoints of trials %s (%d bytes)", deleted, sum(sizes[n] for n in deleted)
        )
    return deleted


def inherit_checkpoint(study: Study, record: TrialRecord, parent_number: int) -> TrialRecord:
    """Copy trial ``parent_number``'s checkpoint folder into ``record``'s own and make it the trial's
    ``resume_from`` (PBT's exploit step: the copy cannot change while the parent trains on); return the record
    with both set."""
    parents = [r for r in study.history() if r.number == parent_number]
    if not parents or not _live_checkpoint(parents[0]):
        logger.warning(
            "trial %d: trial %d has no checkpoint to inherit; it starts fresh", record.number, parent_number
        )
        return record
    target = checkpoint_folder(study.checkpoint_root, record.number)
    shutil.copytree(str(parents[0].checkpoint_dir), target, dirs_exist_ok=True)
    study.storage.set_trial_system_attr(record.trial_id, CHECKPOINT_DIR, str(target))
    study.storage.set_trial_system_attr(record.trial_id, RESUME_FROM, str(target))
    attrs = {**record.system_attrs, CHECKPOINT_DIR: str(target), RESUME_FROM: str(target)}
    return record.replace(system_attrs=attrs)
