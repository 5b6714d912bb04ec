"""The executor contract: every way of running a study's trials offers the same ``optimize``.

The backends, one module each: :mod:`~lmtune.executors.in_process` (the calling process, what
:meth:`lmtune.study.Study.optimize` uses), :mod:`~lmtune.executors.local` (a process pool with GPU slots) and
:mod:`~lmtune.executors.ray` (both on the loop of :mod:`~lmtune.executors.processes`), and
:mod:`~lmtune.executors.fused` (trials trained in fused groups). The simulated clock
(:mod:`~lmtune.executors.simulated`) drives a study on simulated time instead. Every path ends its trials through
:mod:`lmtune.lifecycle`, so limits, failure counts, outcome states and the checkpoint budget mean the same on all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lmtune.lifecycle import RunLimits

if TYPE_CHECKING:
    from lmtune.study import Callback, Study

__all__ = ["Executor"]


class Executor(ABC):
    """Runs a study's trials until a limit is reached; storage stays the source of truth.

    A backend implements :meth:`_run`: ask the study for trials while ``limits.may_start()`` allows (through
    ``limits.ask()``), run them, pass each finished record to ``limits.record()``, and end with
    ``limits.raise_if_failed_too_often()``. Ctrl-C must leave no trial RUNNING: fail those still running
    "interrupted" (:data:`lmtune.lifecycle.INTERRUPTED`) and raise it again.
    """

    def optimize(
        self,
        study: Study,
        objective: Callable[..., Any] | None = None,
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        total_trials: int | None = None,
        max_failed_trials: int | None = 10,
        callbacks: Sequence[Callback] = (),
        wait_for_running: bool = False,
    ) -> None:
        """Run trials until a limit is reached; the arguments mean what they mean for :meth:`Study.optimize`."""
        limits = RunLimits(
            study,
            n_trials,
            timeout,
            total_trials=total_trials,
            max_failed_trials=max_failed_trials,
            callbacks=callbacks,
            wait_for_running=wait_for_running,
        )
        self._run(limits, objective)

    @abstractmethod
    def _run(self, limits: RunLimits, objective: Callable[..., Any] | None) -> None:
        """Run ``limits.study``'s trials of ``objective`` within ``limits``."""
