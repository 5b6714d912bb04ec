"""What a trial process needs to reopen a study from its storage: a small picklable value, never a live study.

A trial process (a pool child or a Ray worker) receives a :class:`StudyRef` and a trial id, opens the study from
the storage URL with the same sampler, scheduler and :class:`~lmtune.options.StudyOptions` (heartbeats, retries,
the checkpoint root and budget), and runs the objective, which it imports by name (``module:function``) or loads
from the study file.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError
from lmtune.options import StudyOptions
from lmtune.samplers import Sampler
from lmtune.schedulers.base import Scheduler

if TYPE_CHECKING:
    from lmtune.study import Study
    from lmtune.trial import Trial

__all__ = ["FileObjective", "StudyRef"]

_LOADED_FILES: dict[str, Callable[..., Any]] = {}  # study file path -> its objective, loaded once per process


@dataclass(frozen=True)
class FileObjective:
    """The objective (or ``task:``) of a study file, loaded in the process that runs the trial.

    A task holds data and models that should not travel between processes; its file is small and is read again.
    ``modules``: what loading the file imports beyond :mod:`lmtune.config` (a task's torch and transformers).
    """

    path: str
    modules: tuple[str, ...] = ()

    def preload(self) -> tuple[str, ...]:
        """The modules a process imports to load this objective, which a process pool can import once for all
        its trial processes."""
        return ("lmtune.config", *self.modules)

    def load(self) -> Callable[..., Any]:
        if self.path not in _LOADED_FILES:
            from lmtune.config import load_study_file

            _LOADED_FILES[self.path] = load_study_file(self.path).objective
        return _LOADED_FILES[self.path]

    def __call__(self, trial: Trial) -> Any:
        return self.load()(trial)


def check_picklable(what: str, value: Any) -> None:
    """Fail early, in the parent, when a value cannot reach a trial process."""
    try:
        pickle.dumps(value)
    except Exception as exc:
        raise ConfigError(
            f"the {what} {value!r} cannot be sent to a trial process ({type(exc).__name__}: {exc}); define it at "
            f"the top level of an importable module (objectives: give `module:function`)"
        ) from None


@dataclass(frozen=True)
class StudyRef:
    """Storage URL, study name and the settings to reopen a study in another process: its sampler, scheduler
    and options, whole (the checkpoint root resolved, so every process writes into the same folder)."""

    storage: str
    study_name: str
    objective: Callable[..., Any]
    sampler: Sampler | None  # None: the default sampler, built from the seed stored with the study
    scheduler: Scheduler | None = None
    options: StudyOptions = field(default_factory=StudyOptions)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_study(cls, study: Study, objective: Callable[..., Any]) -> StudyRef:
        """Describe ``study`` for other processes; its storage must be one they can open."""
        url = study.storage.url
        if not url or url.startswith("memory") or url in ("sqlite://", "sqlite:///:memory:"):
            raise ConfigError(
                f"study {study.study_name!r} lives in memory ({url or 'memory://'}), which other processes cannot "
                f"open; give storage='sqlite:///FILE.db' (one machine) or a PostgreSQL URL (several machines)"
            )
        ref = cls(
            storage=url,
            study_name=study.study_name,
            objective=objective,
            sampler=study.sampler,
            scheduler=study.scheduler,
            options=study.options.updated(checkpoint_root=str(study.checkpoint_root)),
        )
        for what, value in (
            ("objective", objective),
            ("sampler", ref.sampler),
            ("scheduler", study.scheduler),
        ):
            check_picklable(what, value)
        return ref

    def open(self) -> Study:
        """Open the study in this process (its storage is opened anew)."""
        from lmtune.study import load_study

        return load_study(
            self.study_name,
            self.storage,
            sampler=self.sampler,
            scheduler=self.scheduler,
            options=self.options,
        )

    def load_objective(self) -> Callable[..., Any]:
        objective = self.objective
        return objective.load() if isinstance(objective, FileObjective) else objective
