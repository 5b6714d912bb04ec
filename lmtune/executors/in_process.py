"""The in-process executor: trials one after another in the calling process (what ``Study.optimize`` runs)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.executors.base import Executor
from lmtune.lifecycle import RunLimits, run_trial

__all__ = ["InProcessExecutor"]

logger = logging.getLogger("lmtune")


class InProcessExecutor(Executor):
    """Runs trials one at a time in this process. Exceptions in ``catch`` fail the trial and the run goes on;
    others fail it and end the run."""

    def __init__(self, catch: Sequence[type[BaseException]] = (Exception,)) -> None:
        self.catch = tuple(catch)

    def _run(self, limits: RunLimits, objective: Callable[..., Any] | None) -> None:
        if objective is None:
            raise ConfigError("optimize needs an objective")
        study = limits.study
        while limits.may_start():
            if study.nothing_left_to_try():
                logger.info("the sampler has nothing left to try (grid finished)")
                break
            trial = limits.ask()
            if trial is None:
                if limits.wait_for_others():
                    continue
                break
            limits.record(run_trial(study, objective, trial, self.catch))
        limits.raise_if_failed_too_often()
