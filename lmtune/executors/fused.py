"""Fused execution of a ``task:`` study (``execution: {fuse: auto}``): trials trained in groups, in this process.

The executor asks the study for up to ``group_size`` trials, groups them by architecture
(:func:`lmtune.nlp.fused.fuse_key`) and trains each group as one batched model
(:class:`lmtune.nlp.fused.FusedGroup`), stepping the groups in turn. Each member tells the study its own outcome
as it leaves — COMPLETE, PRUNED (the scheduler stopped it), PAUSED (to be promoted later) or FAILED — and the
freed place is filled by a newly asked trial at that evaluation boundary while the study still needs trials.
Trials that cannot be fused (LoRA, another optimizer kind, a curriculum, augmentation, ...) run alone here, one
after another, with a log line naming the reason. Running members are heartbeated by the study (``ask`` starts
that, ``tell`` stops it); Ctrl-C fails them "interrupted". Outcomes, limits and failure counts are those of every
other loop (:mod:`lmtune.lifecycle`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.executors.base import Executor
from lmtune.executors.settings import FUSE_NEEDS_ONE_PROCESS, ExecutionSettings
from lmtune.lifecycle import INTERRUPTED, RunLimits, fail_interrupted, finish_trial, run_trial
from lmtune.trial import Trial, TrialState

__all__ = ["DEFAULT_GROUP_SIZE", "FusedExecutor", "PlannedTrial", "fused_executor_for", "plan_trial"]

logger = logging.getLogger("lmtune")

# Trials per fused group by device type. On 2 CPU cores 8 tiny models fused train 3.1x faster than one after
# another (docs/benchmarks.md); a GPU has room for more before the batched step stops getting cheaper per trial.
DEFAULT_GROUP_SIZE = {"cpu": 8, "cuda": 16}


@dataclass
class PlannedTrial:
    """A trial's training parameters, its training setup and its fuse key, or the reason it must run alone."""

    trial: Trial
    hp: Any
    params: dict[str, Any]
    setup: Any
    key: tuple[Any, ...] | str


def plan_trial(task: Any, trial: Trial) -> PlannedTrial:
    """What ``task`` (a :class:`lmtune.nlp.task.Task`) would train for ``trial``, and whether it can be fused.

    The parameters are those the task's own objective uses (``task.training`` overridden by the trial's)."""
    from lmtune.nlp.augment import AugmentOptions
    from lmtune.nlp.fused import fuse_key
    from lmtune.nlp.hyperparameters import Hyperparameters

    params = {**task.spec.training, **trial.params}
    hp = Hyperparameters.from_params(params)
    setup = task.setup(int(hp.max_length or task.spec.max_length))
    key: tuple[Any, ...] | str = fuse_key(hp, setup)
    if (
        not isinstance(key, str)
        and AugmentOptions.from_params(params).active
        and task.spec.type != "causal-lm"
    ):
        key = "augmentation gives each trial its own training rows"
    return PlannedTrial(trial, hp, params, setup, key)


class FusedExecutor(Executor):
    """Runs a task study's trials in fused groups of up to ``group_size`` trials (default by the task's device:
    :data:`DEFAULT_GROUP_SIZE`) in the calling process."""

    def __init__(self, task: Any, group_size: int | None = None) -> None:
        if group_size is not None and (
            isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1
        ):
            raise ConfigError(f"`execution.group_size` must be an integer >= 1, but got {group_size!r}")
        self.task = task
        self.group_size = group_size or DEFAULT_GROUP_SIZE.get(task.device.type, DEFAULT_GROUP_SIZE["cpu"])

    def _run(self, limits: RunLimits, objective: Callable[..., Any] | None) -> None:
        """The task is the objective: ``objective`` is ignored."""
        run = _FusedRun(self, limits)
        try:
            run.run()
        except BaseException:
            run.abort(INTERRUPTED)
            raise


class _FusedRun:
    """One run of :meth:`FusedExecutor.optimize`: the groups and their members; trials run here, not elsewhere."""

    def __init__(self, executor: FusedExecutor, limits: RunLimits) -> None:
        self.task, self.group_size = executor.task, executor.group_size
        self.limits, self.study = limits, limits.study
        self.groups: dict[tuple[Any, ...], Any] = {}
        self.members: dict[int, Trial] = {}
        self.need_fill = True

    # Asking -----------------------------------------------------------------------------------------------------
    def _may_ask(self) -> bool:
        if not self.limits.may_start() or len(self.members) >= self.group_size:
            return False
        return not self.study.nothing_left_to_try()

    def _fill(self) -> None:
        """Ask for trials while there is room (at the start, and when members have left)."""
        self.need_fill = False
        while self._may_ask():
            trial = self.limits.ask()
            if trial is None:
                return
            self._place(trial)

    def _place(self, trial: Trial) -> None:
        """Put ``trial`` into the group of its architecture, or run it alone when it cannot be fused."""
        from lmtune.nlp.fused import FusedGroup

        try:
            planned = plan_trial(self.task, trial)
        except Exception as exc:  # bad parameters fail this trial, as they would when it runs alone
            self._end(trial, error=exc)
            return
        if isinstance(planned.key, str):
            logger.info("trial %d runs alone, not fused: %s", trial.number, planned.key)
            self.limits.record(run_trial(self.study, self.task, trial))
            return
        group = self.groups.get(planned.key)
        if group is None:
            group = FusedGroup(planned.setup, on_leave=self._leave)
        try:
            group.add(trial, planned.hp, planned.params)
        except Exception as exc:
            self._end(trial, error=exc)
            return
        self.groups[planned.key] = group
        self.members[trial.trial_id] = trial

    # Leaving ----------------------------------------------------------------------------------------------------
    def _leave(self, result: Any) -> None:
        """A member left its group (``result``: a :class:`~lmtune.nlp.fused.MemberResult`): tell its outcome."""
        self.members.pop(result.trial.trial_id, None)
        self.need_fill = True
        self._end(result.trial, result.value, result.error)

    def _end(self, trial: Trial, value: Any = None, error: BaseException | None = None) -> None:
        self.limits.record(finish_trial(self.study, trial, value, error))

    # The loop ---------------------------------------------------------------------------------------------------
    def _step_groups(self) -> None:
        """One optimizer step of every group; a group whose step itself fails fails all its members."""
        for key, group in list(self.groups.items()):
            try:
                group.step()
            except Exception as exc:
                for slot in list(group.slots):
                    self.members.pop(slot.runner.trial.trial_id, None)
                    self._end(slot.runner.trial, error=exc)
                group.slots.clear()
                self.need_fill = True
            if not len(group):
                del self.groups[key]

    def run(self) -> None:
        while True:
            if self.need_fill:
                self._fill()
            if self.groups:
                self._step_groups()
                continue
            if self._may_ask() and self.limits.wait_for_others():  # other workers' trials may fail
                self.need_fill = True
                continue
            break
        self.limits.raise_if_failed_too_often("the task")

    def abort(self, reason: str) -> None:
        """Fail every running member with ``reason`` (Ctrl-C, or an error in the loop)."""
        for trial in list(self.members.values()):
            if reason == INTERRUPTED:  # the next run resumes it
                fail_interrupted(self.study, trial.trial_id)
                continue
            try:
                self.study.tell(trial, state=TrialState.FAILED, failure_reason=reason)
            except Exception:
                logger.debug("trial %d ended before it could be failed", trial.number, exc_info=True)
        self.members.clear()
        self.groups.clear()


def fused_executor_for(settings: ExecutionSettings, task: Any) -> FusedExecutor | None:
    """The fused executor ``execution: {fuse: ...}`` asks for, or None when trials run as usual: fusing is off,
    the study has an objective instead of a task, or (``fuse: auto``) the settings ask for processes."""
    if settings.fuse == "false" or task is None:
        return None
    if not settings.in_process:
        if settings.fuse == "true":
            raise ConfigError(FUSE_NEEDS_ONE_PROCESS)
        logger.info(
            "execution.fuse: auto: trials run in their own processes as workers/executor/resources/"
            "trial_timeout ask; they are not fused"
        )
        return None
    return FusedExecutor(task, group_size=settings.group_size)
