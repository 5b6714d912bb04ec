"""The one root error of lmtune and its documented tree.

``LmtuneError``
 ├── ``ConfigError`` (also a ``ValueError``): a study file, search space or argument is invalid
 ├── ``StorageError``: the store cannot do what was asked
 │    ├── ``SchemaVersionError``: the database was written by another schema version
 │    ├── ``StudyNotFoundError`` (also a ``KeyError``)
 │    ├── ``DuplicatedStudyError``: a study of that name exists already
 │    └── ``TrialStateError``: an illegal state transition, e.g. finishing a finished trial
 ├── ``TrialPruned``: raised inside an objective to end the trial as PRUNED
 ├── ``TooManyFailedTrialsError``: ``max_failed_trials`` failures in a row stopped a run
 └── ``MissingDependencyError`` (also an ``ImportError``): an optional extra is not installed
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DuplicatedStudyError",
    "LmtuneError",
    "MissingDependencyError",
    "SchemaVersionError",
    "StorageError",
    "StudyNotFoundError",
    "TooManyFailedTrialsError",
    "TrialPruned",
    "TrialStateError",
]


class LmtuneError(Exception):
    """Root of every error lmtune raises on purpose."""


class ConfigError(LmtuneError, ValueError):
    """Invalid user input: the message names the field, the bad value and what is allowed."""


class StorageError(LmtuneError):
    """The storage backend could not carry out a request."""


class SchemaVersionError(StorageError):
    """The database schema version differs from the one this lmtune writes."""


class StudyNotFoundError(StorageError, KeyError):
    """No study of the given name exists in the storage."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else "study not found"


class DuplicatedStudyError(StorageError):
    """A study of the given name exists already."""


class TrialStateError(StorageError):
    """A trial was asked to make a state transition that is not allowed."""


class TrialPruned(LmtuneError):
    """Raise inside an objective to stop the trial; it is recorded PRUNED with its last reported value."""


class TooManyFailedTrialsError(LmtuneError):
    """Raised when ``max_failed_trials`` trials failed in a row, instead of looping forever."""


class MissingDependencyError(LmtuneError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""
