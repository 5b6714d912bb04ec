"""The study: ask / tell / optimize over a storage. It holds no history of its own; storage does."""

from __future__ import annotations

import csv
import io
import json
import logging
import operator
import os
import platform
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lmtune.checkpoints import (
    CheckpointBudget,
    checkpoint_folder,
    claim_root,
    collect_garbage,
    default_checkpoint_root,
    inherit_checkpoint,
)
from lmtune.exceptions import ConfigError, TrialStateError
from lmtune.executors.retry import RetryPolicy, is_lost
from lmtune.history import Direction, TrialHistory
from lmtune.lifecycle import run_trial
from lmtune.options import StudyOptions
from lmtune.samplers import Sampler, default_sampler
from lmtune.samplers._inferred_space import InferredSpaceCache
from lmtune.schedulers.base import CONTINUE, Decision, NoScheduler, Scheduler
from lmtune.space import Distribution, SearchSpace
from lmtune.storage import Storage, get_storage
from lmtune.storage.base import StudyInfo
from lmtune.trial import BUDGET, CHECKPOINT_DIR, RESUME_FROM, Trial, TrialRecord, TrialState, check_value

__all__ = ["Study", "StudyOptions", "create_study", "load_study"]

logger = logging.getLogger("lmtune")

_state_of = operator.attrgetter("state")

Objective = Callable[[Trial], Any]
Callback = Callable[["Study", TrialRecord], None]


def _check_direction(direction: str) -> Direction:
    try:
        return Direction(direction)
    except ValueError:
        raise ConfigError(f"direction must be 'minimize' or 'maximize', but got {direction!r}") from None


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def provenance(seed: int | None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Where a study came from: versions, platform and seed (plus e.g. the study file's text)."""
    from lmtune import __version__

    return {
        "lmtune": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": seed,
        "created_by": " ".join(sys.argv[:1]) or "python",
        **dict(extra or {}),
    }


class _Heartbeat:
    """A daemon thread that stamps the RUNNING trials of this process every ``interval`` seconds."""

    def __init__(self, storage: Storage, interval: float) -> None:
        self._storage = storage
        self._interval = interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="lmtune-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = list(self._ids)
            if not ids:
                continue
            try:
                self._storage.heartbeat(ids)
            except Exception:  # a missed beat is retried next interval; the grace period allows several
                logger.debug("heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()


class Study:
    """A named optimisation problem in a storage. Create it with :func:`create_study` or :func:`load_study`.

    ``ask()`` creates a trial (parameters from the sampler where the space is declared), ``tell()`` records its
    outcome, and ``optimize()`` loops ask -> run -> tell. Any number of processes may work on one study through a
    shared storage.
    """

    def __init__(
        self,
        info: StudyInfo,
        storage: Storage,
        *,
        sampler: Sampler | None = None,
        scheduler: Scheduler | str | Mapping[str, Any] | None = None,
        options: StudyOptions | None = None,
    ) -> None:
        self._info = info
        self._storage = storage
        self.sampler = sampler if sampler is not None else default_sampler()
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            from lmtune.schedulers import as_scheduler

            scheduler = as_scheduler(scheduler)
        self.scheduler = scheduler if scheduler is not None else NoScheduler()
        self.space: SearchSpace | None = SearchSpace.from_json(info.space) if info.space else None
        self.worker_id = _worker_id()
        self.options = options if options is not None else StudyOptions()
        self._checkpoint_root = (
            Path(self.options.checkpoint_root) if self.options.checkpoint_root is not None else None
        )
        self._heartbeat = _Heartbeat(storage, self.options.heartbeat_interval)
        self._cache: list[TrialRecord | None] = []  # indexed by trial number
        self._holes = 0  # numbers not seen yet below the highest one seen
        self._seq = -1
        self._cache_lock = threading.Lock()
        # The history nothing_left_to_try() just read, when it held no WAITING trial: the next ask() then skips
        # asking storage for one (an enqueue landing in between is claimed by the ask after, as one landing after
        # the claim would be) and gives it to a define-by-run study's sampler instead of reading again.
        self._fresh: TrialHistory | None = None
        self._inferred_space = InferredSpaceCache()
        self.fail_stale_trials()

    # Identity -------------------------------------------------------------------------------------------------
    @property
    def study_name(self) -> str:
        return self._info.name

    @property
    def study_id(self) -> int:
        return self._info.study_id

    @property
    def direction(self) -> str:
        return self._info.direction

    # Options, as their own names -----------------------------------------------------------------------------
    @property
    def grace_period(self) -> float:
        return self.options.grace_period

    @property
    def heartbeat_interval(self) -> float:
        return self.options.heartbeat_interval

    @property
    def retry(self) -> RetryPolicy | None:
        return self.options.retry

    @property
    def checkpoint_budget(self) -> CheckpointBudget | None:
        return self.options.checkpoint_budget

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def attrs(self) -> dict[str, Any]:
        """Study attributes, including ``provenance``."""
        return dict(self._storage.get_study(self.study_name).attrs)

    def set_attr(self, key: str, value: Any) -> None:
        self._storage.set_study_attr(self.study_id, key, value)

    @property
    def checkpoint_root(self) -> Path:
        """The folder under which each trial gets its checkpoint folder: the ``checkpoint_root`` option, else
        :func:`lmtune.checkpoints.default_checkpoint_root` (this study's own folder, which it claims)."""
        if self._checkpoint_root is None:
            root = default_checkpoint_root(self._storage.url, self.study_name, self.study_id)
            claim_root(root, self._storage.url, self.study_name)
            self._checkpoint_root = root
        return self._checkpoint_root

    def checkpoint_dir_of(self, record: TrialRecord) -> Path:
        """A trial's own checkpoint folder, created on first use and recorded in the trial."""
        path = checkpoint_folder(self.checkpoint_root, record.number)
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            self._storage.set_trial_system_attr(record.trial_id, CHECKPOINT_DIR, str(path))
        return path

    # History --------------------------------------------------------------------------------------------------
    def history(self) -> TrialHistory:
        """A fresh read-only snapshot of all trials; only what changed since the last call is fetched."""
        with self._cache_lock:
            changed = self._storage.get_trials(self.study_id, since_seq=self._seq)
            for record in changed:
                if record.number >= len(self._cache):
                    self._holes += record.number + 1 - len(self._cache)
                    self._cache.extend([None] * (record.number + 1 - len(self._cache)))
                self._holes -= self._cache[record.number] is None
                self._cache[record.number] = record
                self._seq = max(self._seq, record.seq)
            # Numbers are dense, so this is one C-level copy (the history is rebuilt for every trial).
            records = tuple(r for r in self._cache if r is not None) if self._holes else tuple(self._cache)
        return TrialHistory(records, self.direction, self.space)  # type: ignore[arg-type]

    @property
    def trials(self) -> list[TrialRecord]:
        """All trials, ordered by number."""
        return list(self.history())

    def get_trials(self, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        wanted = set(states) if states is not None else None
        return [r for r in self.history() if wanted is None or r.state in wanted]

    @property
    def best_trial(self) -> TrialRecord:
        """The COMPLETE trial with the best value; ``ValueError`` when there is none yet."""
        best = self.history().best()
        if best is None:
            raise ValueError(f"study {self.study_name!r} has no COMPLETE trial yet")
        return best

    @property
    def best_value(self) -> float:
        value = self.best_trial.value
        assert value is not None  # COMPLETE trials always have a value
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    def fail_stale_trials(self) -> list[TrialRecord]:
        """Fail RUNNING trials whose worker stopped sending heartbeats (reason "worker lost")."""
        failed = self._storage.fail_stale_trials(self.study_id, self.grace_period)
        for record in failed:
            logger.warning(
                "trial %d failed: worker lost (no heartbeat for %.0f s)", record.number, self.grace_period
            )
        if self.retry is not None and failed:
            self.retry.enqueue_retries(self, failed)
        return failed

    def adopt(self, trial_id: int, presuggested: Mapping[str, Any] | None = None) -> Trial:
        """A handle on a RUNNING trial that another process asked for (an executor's trial process runs it);
        this process sends its heartbeats until it tells the outcome."""
        self._heartbeat.add(trial_id)
        return Trial(self, self._storage.get_trial(trial_id), presuggested)

    def release(self, trial_id: int) -> None:
        """Stop sending heartbeats for a trial that another process ran to its end."""
        self._heartbeat.remove(trial_id)

    # Ask / tell -----------------------------------------------------------------------------------------------
    def enqueue(self, params: Mapping[str, Any]) -> TrialRecord:
        """Add a WAITING trial with these parameters (all or some: the sampler completes the rest)."""
        params = dict(params)
        distributions: dict[str, Distribution] = {}
        if self.space is not None:
            params = self.space.validate(params, partial=True)
            distributions = {name: self.space[name] for name in params}
        record = self._storage.create_trial(
            self.study_id, state=TrialState.WAITING, params=params, distributions=distributions
        )
        assert record is not None
        return record

    def ask(self, *, max_trials: int | None = None) -> Trial | None:
        """Start the next trial: an enqueued one, a paused one the scheduler promotes, or a new one.

        With ``max_trials`` a new trial is created only while the study holds fewer than that many unfailed
        trials; None is returned otherwise (another worker may be finishing the rest).
        """
        start = (
            self.scheduler.next_trial(self.history()) if not isinstance(self.scheduler, NoScheduler) else None
        )
        record: TrialRecord | None = None
        for _ in range(3):  # another worker may have resumed the paused trial first: ask again
            if start is None or start.resume_number is None:
                break
            record = self._resume(start.resume_number, start.budget)
            if record is not None:
                break
            start = self.scheduler.next_trial(self.history())
        fresh, self._fresh = (self._fresh if record is None else None), None
        none_waiting = fresh is not None
        if record is None and not none_waiting:
            record = self._storage.claim_trial(self.study_id, self.worker_id)
        if record is None:
            record = self._storage.create_trial(
                self.study_id,
                state=TrialState.RUNNING,
                worker_id=self.worker_id,
                system_attrs=start.system_attrs() if start is not None else {},
                max_trials=max_trials,
                params=(start.params if start is not None and self.space is not None else None),
                distributions=(
                    {k: self.space[k] for k in start.params}
                    if start is not None and start.params and self.space is not None
                    else None
                ),
            )
            created = record is not None
            if record is None and none_waiting:  # full, but a trial enqueued since the read may be waiting
                record = self._storage.claim_trial(self.study_id, self.worker_id)
            if record is None:
                return None
            if created and record.inherit_checkpoint_of is not None:
                record = inherit_checkpoint(self, record, record.inherit_checkpoint_of)
        self._heartbeat.add(record.trial_id)
        record, presuggested = self._complete_params(record, fresh)
        if self.space is None and start is not None and start.params:  # the scheduler's model proposes
            presuggested = {**(presuggested or {}), **start.params}
        return Trial(self, record, presuggested)

    def _resume(self, number: int, budget: int | None) -> TrialRecord | None:
        paused = [r for r in self.history() if r.number == number]
        if not paused:
            return None
        record = self._storage.resume_trial(paused[0].trial_id, self.worker_id)
        if record is None:
            return None
        if budget is not None:
            self._storage.set_trial_system_attr(record.trial_id, BUDGET, budget)
        if record.checkpoint_dir:
            self._storage.set_trial_system_attr(record.trial_id, RESUME_FROM, record.checkpoint_dir)
        logger.info("trial %d resumes to budget %s", number, budget)
        return self._storage.get_trial(record.trial_id)

    def _complete_params(
        self, record: TrialRecord, fresh: TrialHistory | None = None
    ) -> tuple[TrialRecord, dict[str, Any] | None]:
        """Fill a declared space's missing parameters (all of them for a new trial) from the sampler and store
        them. Returns the record with its parameters and, for define-by-run studies, the sampler's joint
        suggestion over the space seen so far, which ``suggest_*`` calls then take (None for a declared space)."""
        if self.space is None:
            history = fresh if fresh is not None else self.history()
            inferred = self._inferred_space.space_of(history)
            if len(inferred) == 0:
                return record, {}
            return record, self.sampler.suggest(inferred, history, record.number)
        fixed = dict(record.params)
        if all(name in fixed for name in self.space if self.space.is_active(name, fixed)):
            return record, None
        history = (
            self.history() if self.sampler.needs_history else TrialHistory((), self.direction, self.space)
        )
        suggested = self.sampler.suggest(self.space, history, record.number)
        params: dict[str, Any] = {}
        for name in self.space:
            if not self.space.is_active(name, params):
                continue
            if name in fixed:
                params[name] = fixed[name]
            elif name in suggested:
                params[name] = suggested[name]
            else:  # a fixed parent activated a branch the sampler did not suggest
                params[name] = self.sampler.suggest_one(
                    name, self.space[name], history, record.number, params
                )
        new = {k: v for k, v in params.items() if k not in fixed}
        distributions = {k: self.space[k] for k in new}
        self._storage.set_trial_params(record.trial_id, new, distributions)
        # The record as storage now holds it (values as JSON reads them back), without reading it again.
        stored = json.loads(json.dumps(new))
        return record.replace(
            params={**fixed, **stored}, distributions={**record.distributions, **distributions}
        ), None

    def decide(self, trial_id: int, value: float, step: int) -> Decision:
        """Record a trial's intermediate ``value`` at ``step`` and return the scheduler's decision about it (what
        :meth:`Trial.report` does)."""
        record = self._storage.report(trial_id, step, value)
        if isinstance(self.scheduler, NoScheduler):
            return CONTINUE
        decision = self.scheduler.on_report(record, self.history())
        if decision.action.value != "CONTINUE":
            logger.info(
                "trial %d at step %d: %s (%s)", record.number, step, decision.action.value, decision.reason
            )
        return decision

    def tell(
        self,
        trial: Trial | int,
        value: float | None = None,
        *,
        state: TrialState | None = None,
        failure_reason: str | None = None,
    ) -> TrialRecord:
        """Record the outcome of a trial (a handle or a trial number).

        With only ``value`` the trial is COMPLETE; a value that is not a finite number FAILS it with a reason.
        ``state=PRUNED`` keeps ``value`` or else the last reported one; ``state=FAILED`` records ``failure_reason``.
        """
        # A handle knows its trial; the stored record is read only where its last report is needed.
        paused_or_pruned = state in (TrialState.PRUNED, TrialState.PAUSED)
        record = (
            trial._record if isinstance(trial, Trial) and not paused_or_pruned else self._record_of(trial)
        )
        self._heartbeat.remove(record.trial_id)
        if state is None:
            state = TrialState.COMPLETE
        if state is TrialState.COMPLETE:
            checked, reason = check_value(value)
            if checked is None:
                state, failure_reason = TrialState.FAILED, reason
            value = checked
        elif state in (TrialState.PRUNED, TrialState.PAUSED):
            value = value if value is not None else record.last_intermediate
        elif state is TrialState.FAILED:
            value = None
        else:
            raise ConfigError(f"tell() state must be COMPLETE, PRUNED, PAUSED or FAILED, not {state}")
        if state is TrialState.FAILED:
            logger.warning("trial %d failed: %s", record.number, failure_reason)
        try:
            finished = self._storage.finish_trial(record.trial_id, state, value, failure_reason)
        except TrialStateError:
            finished = self._storage.get_trial(record.trial_id)
            if not is_lost(finished):
                raise
            # Its heartbeats stopped reaching storage for a grace period; a retry may be running it already.
            logger.warning(
                "trial %d ended after it was failed as lost; its outcome (%s) is not recorded",
                record.number,
                state.value,
            )
            return finished
        if self.checkpoint_budget is not None:
            collect_garbage(self, self.checkpoint_budget)
        return finished

    def _record_of(self, trial: Trial | int) -> TrialRecord:
        if isinstance(trial, Trial):
            return self._storage.get_trial(trial.trial_id)
        for record in self.history():
            if record.number == trial:
                return record
        raise ConfigError(f"study {self.study_name!r} has no trial number {trial!r}")

    def nothing_left_to_try(self) -> bool:
        """True when no trial is enqueued and the sampler has exhausted its space (a finished grid)."""
        history = self.history()
        if TrialState.WAITING in map(_state_of, history.records):  # a C-level scan: this runs every trial
            return False
        self._fresh = history
        return self.sampler.is_exhausted(self.space, history)

    # Running ------------------------------------------------------------------------------------------------
    def run_trial(
        self, objective: Objective, trial: Trial, catch: tuple[type[BaseException], ...] = (Exception,)
    ) -> TrialRecord:
        """Run ``objective`` on ``trial`` and record the outcome: COMPLETE, PRUNED, PAUSED or FAILED
        (:func:`lmtune.lifecycle.run_trial`)."""
        return run_trial(self, objective, trial, catch)

    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        total_trials: int | None = None,
        catch: Sequence[type[BaseException]] = (Exception,),
        max_failed_trials: int | None = 10,
        callbacks: Sequence[Callback] = (),
        wait_for_running: bool = False,
    ) -> None:
        """Run trials in this process until one of the limits is reached.

        ``n_trials``: how many *more* trials to run; ``total_trials``: stop once the study holds that many
        unfailed trials (FAILED ones are replaced); ``timeout``: seconds after which no new trial starts.
        Exceptions in ``catch`` fail the trial and the run goes on; after ``max_failed_trials`` failures in a row
        (a positive integer; None: no limit) it stops with :class:`TooManyFailedTrialsError`. With
        ``wait_for_running`` (and ``total_trials``) the run waits for trials other workers are running instead of
        returning, replacing those that fail or whose worker is lost, so it ends only when the study holds
        ``total_trials`` finished trials.
        """
        from lmtune.executors.in_process import InProcessExecutor

        InProcessExecutor(catch).optimize(
            self,
            objective,
            n_trials,
            timeout,
            total_trials=total_trials,
            max_failed_trials=max_failed_trials,
            callbacks=callbacks,
            wait_for_running=wait_for_running,
        )

    # Export ---------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON export: ``{"study", "direction", "space", "trials": [...]}``."""
        return {
            "study": self.study_name,
            "direction": self.direction,
            "space": self.space.to_dict() if self.space is not None else None,
            "trials": [r.to_dict() for r in self.history()],
        }

    def export_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def export_csv(self, path: str | Path | None = None) -> str:
        """One row per trial: number, state, value, duration, one ``params.NAME`` column per parameter, reason."""
        records = list(self.history())
        names: list[str] = []
        for record in records:
            names.extend(n for n in record.params if n not in names)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ["number", "state", "value", "duration_s", *(f"params.{n}" for n in names), "failure_reason"]
        )
        for r in records:
            params = [
                json.dumps(r.params[n]) if isinstance(r.params.get(n), (list, dict)) else r.params.get(n, "")
                for n in names
            ]
            writer.writerow(
                [
                    r.number,
                    r.state.value,
                    "" if r.value is None else r.value,
                    "" if r.duration is None else round(r.duration, 6),
                    *params,
                    r.failure_reason or "",
                ]
            )
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def close(self) -> None:
        self._heartbeat.stop()

    def __repr__(self) -> str:
        return f"Study(name={self.study_name!r}, direction={self.direction!r}, storage={self._storage.url!r})"


def _space_of(space: SearchSpace | Mapping[str, Any] | None) -> SearchSpace | None:
    if space is None or isinstance(space, SearchSpace):
        return space
    return SearchSpace.from_dict(space)


def create_study(
    direction: str = "minimize",
    sampler: Sampler | None = None,
    seed: int | None = None,
    storage: str | Storage | None = None,
    study_name: str | None = None,
    load_if_exists: bool = False,
    *,
    space: SearchSpace | Mapping[str, Any] | None = None,
    scheduler: Scheduler | str | Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    options: StudyOptions | None = None,
    checkpoint_root: str | Path | None = None,
    grace_period: float | None = None,
    heartbeat_interval: float | None = None,
    retry: RetryPolicy | None = None,
    checkpoint_budget: CheckpointBudget | None = None,
) -> Study:
    """Create a study (in memory with a generated name unless ``storage`` / ``study_name`` are given).

    ``seed`` seeds the default sampler. With ``load_if_exists`` an existing study of that name is opened instead,
    after checking that its direction and declared space match. ``options`` holds the settings every process of
    the study shares (:class:`StudyOptions`); the keywords after it override single fields.
    """
    from lmtune.exceptions import DuplicatedStudyError

    _check_direction(direction)
    if sampler is not None and seed is not None:
        raise ConfigError(
            "give either `sampler` or `seed`: the seed of an explicit sampler is set on the sampler"
        )
    store = get_storage(storage)
    if study_name is None:
        study_name = f"study-{uuid.uuid4().hex[:8]}"
    if not isinstance(study_name, str) or not study_name.strip():
        raise ConfigError(f"study_name must be a non-empty string, but got {study_name!r}")
    declared = _space_of(space)
    sampler = sampler if sampler is not None else default_sampler(seed)
    all_attrs = {
        "provenance": provenance(sampler.seed, {"sampler": sampler.describe()}),
        **dict(attrs or {}),
    }
    try:
        info = store.create_study(study_name, direction, declared.to_json() if declared else None, all_attrs)
    except DuplicatedStudyError:
        if not load_if_exists:
            raise
        info = store.get_study(study_name)
        check_compatible(info, direction, declared)
    options = (options or StudyOptions()).updated(
        checkpoint_root=checkpoint_root,
        grace_period=grace_period,
        heartbeat_interval=heartbeat_interval,
        retry=retry,
        checkpoint_budget=checkpoint_budget,
    )
    return Study(info, store, sampler=sampler, scheduler=scheduler, options=options)


def check_compatible(info: StudyInfo, direction: str, space: SearchSpace | None) -> None:
    """Refuse to reopen a study with another direction or another declared space."""
    if info.direction != direction:
        raise ConfigError(
            f"study {info.name!r} is stored with direction {info.direction!r}, but {direction!r} was given; "
            f"use another study name or the stored direction"
        )
    stored = SearchSpace.from_json(info.space) if info.space else None
    if space is not None and stored is not None and stored != space:
        raise ConfigError(
            f"study {info.name!r} is stored with another space: stored {stored.to_dict()}, given {space.to_dict()}; "
            f"use another study name, or delete the stored study"
        )
    if space is not None and stored is None and info.n_trials > 0:
        raise ConfigError(f"study {info.name!r} is stored without a declared space, but a space was given")


def load_study(
    study_name: str,
    storage: str | Storage,
    *,
    sampler: Sampler | None = None,
    scheduler: Scheduler | str | Mapping[str, Any] | None = None,
    options: StudyOptions | None = None,
    checkpoint_root: str | Path | None = None,
    grace_period: float | None = None,
    heartbeat_interval: float | None = None,
    retry: RetryPolicy | None = None,
    checkpoint_budget: CheckpointBudget | None = None,
) -> Study:
    """Open an existing study; ``StudyNotFoundError`` names the storage when it is absent. ``options`` and the
    keywords after it mean what they mean for :func:`create_study`."""
    store = get_storage(storage)
    info = store.get_study(study_name)
    if sampler is None:
        seed = (info.attrs.get("provenance") or {}).get("seed")
        sampler = default_sampler(seed)
    options = (options or StudyOptions()).updated(
        checkpoint_root=checkpoint_root,
        grace_period=grace_period,
        heartbeat_interval=heartbeat_interval,
        retry=retry,
        checkpoint_budget=checkpoint_budget,
    )
    return Study(info, store, sampler=sampler, scheduler=scheduler, options=options)
