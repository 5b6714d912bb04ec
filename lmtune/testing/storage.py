"""The storage conformance suite: the checks every :class:`~lmtune.storage.base.Storage` backend must pass.

Subclass :class:`StorageConformance` in a test module and say how to make a fresh, empty storage; pytest (or
``unittest``) collects the ``test_*`` methods::

    class TestMyStorage(StorageConformance):
        def make_storage(self) -> Storage:
            return MyStorage(...)

        def storage_url(self) -> str | None:  # optional: a URL other processes can open
            return "mystore://..."

The multi-process checks run only when :meth:`StorageConformance.storage_url` gives a URL. Nothing here imports
pytest; a skipped check raises :class:`unittest.SkipTest`, which every test runner understands.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import unittest
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lmtune.exceptions import ConfigError, DuplicatedStudyError, StudyNotFoundError, TrialStateError
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace
from lmtune.storage._common import WORKER_LOST
from lmtune.storage.base import Storage
from lmtune.trial import TrialRecord, TrialState

__all__ = ["StorageConformance"]

FLOAT = FloatDistribution(1e-5, 1e-1, log=True)
INT = IntDistribution(1, 9, step=2)
CHOICES = CategoricalDistribution(["sgd", None, True, 3, 0.5, [1, "a"], {"k": [1, 2]}])
PROCESS_SPACE = {
    "x": {"type": "float", "low": -5.0, "high": 10.0},
    "y": {"type": "float", "low": 0.0, "high": 15.0},
}


def _sleepy_branin(trial: Any) -> float:
    from lmtune.testing.functions import branin

    time.sleep(0.01)  # a little work, so that both processes are still at it when the other one starts
    return branin(trial)


def _fill_study(url: str, study_name: str, total: int, seed: int, start: Any) -> None:
    """One worker process: open the study, wait for the other one, run trials until the study holds ``total``."""
    import lmtune
    from lmtune.samplers import RandomSampler

    study = lmtune.create_study(
        storage=url,
        study_name=study_name,
        space=PROCESS_SPACE,
        load_if_exists=True,
        sampler=RandomSampler(seed),
    )
    start.wait()
    study.optimize(_sleepy_branin, total_trials=total, catch=())
    study.close()


class StorageConformance:
    """Checks of the storage contract in :mod:`lmtune.storage.base`; see the module docstring for use."""

    #: Threads and trials per thread of the thread-safety check.
    n_threads = 4
    trials_per_thread = 15
    #: Trials two processes fill one study with.
    process_trials = 40

    def make_storage(self) -> Storage:
        """A fresh, empty storage (called once per check)."""
        raise NotImplementedError("subclasses say how to make the storage under test")

    def storage_url(self) -> str | None:
        """A URL through which other processes open the storage last made; None skips those checks."""
        return None

    @contextmanager
    def storage(self) -> Iterator[Storage]:
        store = self.make_storage()
        try:
            yield store
        finally:
            store.close()

    def _url_or_skip(self) -> str:
        url = self.storage_url()
        if url is None:
            raise unittest.SkipTest(
                "this storage cannot be opened from another process (storage_url() is None)"
            )
        return url

    # Studies ------------------------------------------------------------------------------------------------
    def test_create_and_get_study(self) -> None:
        space = SearchSpace({"lr": FLOAT}).to_json()
        with self.storage() as store:
            info = store.create_study("s", "maximize", space, {"provenance": {"seed": 3}, "tags": ("a", "b")})
            again = store.get_study("s")
            assert again == info
            assert (again.name, again.direction, again.space, again.n_trials) == ("s", "maximize", space, 0)
            assert again.attrs == {"provenance": {"seed": 3}, "tags": ["a", "b"]}
            assert isinstance(again.created_at, float) and abs(again.created_at - time.time()) < 600
            assert store.get_study("s").study_id != store.create_study("t", "minimize").study_id

    def test_duplicate_study_is_refused_and_kept(self) -> None:
        with self.storage() as store:
            info = store.create_study("s", "minimize", None, {"a": 1})
            try:
                store.create_study("s", "maximize", None, {"a": 2})
            except DuplicatedStudyError as exc:
                assert "s" in str(exc)
            else:
                raise AssertionError("a second study of the same name was created")
            assert store.get_study("s") == info
            assert len(store.list_studies()) == 1

    def test_missing_study_is_a_key_error(self) -> None:
        with self.storage() as store:
            for call in (lambda: store.get_study("nope"), lambda: store.delete_study("nope")):
                try:
                    call()
                except StudyNotFoundError as exc:
                    assert isinstance(exc, KeyError) and "nope" in str(exc)
                else:
                    raise AssertionError("a missing study did not raise StudyNotFoundError")

    def test_list_studies_oldest_first_with_trial_counts(self) -> None:
        with self.storage() as store:
            for name in ("b", "a", "c"):
                store.create_study(name, "minimize")
            for _ in range(3):
                store.create_trial(store.get_study("a").study_id)
            listed = store.list_studies()
            assert [s.name for s in listed] == ["b", "a", "c"]
            assert [s.n_trials for s in listed] == [0, 3, 0]

    def test_delete_study_removes_its_trials_only(self) -> None:
        with self.storage() as store:
            gone, kept = store.create_study("gone", "minimize"), store.create_study("kept", "minimize")
            store.create_trial(gone.study_id)
            record = store.create_trial(kept.study_id, params={"x": 1})
            store.delete_study("gone")
            assert [s.name for s in store.list_studies()] == ["kept"]
            assert store.get_trials(kept.study_id) == [record]
            store.create_study("gone", "minimize")
            assert store.get_study("gone").n_trials == 0

    def test_study_attrs_round_trip_as_json(self) -> None:
        with self.storage() as store:
            info = store.create_study("s", "minimize", None, {"keep": 1})
            store.set_study_attr(info.study_id, "nested", {"a": [1, 2.5, None], "b": (True, "x")})
            store.set_study_attr(info.study_id, "keep", 2)
            try:
                store.set_study_attr(info.study_id, "bad", object())
            except ConfigError:
                pass
            else:
                raise AssertionError("a non-JSON study attribute was accepted")
            assert store.get_study("s").attrs == {
                "keep": 2,
                "nested": {"a": [1, 2.5, None], "b": [True, "x"]},
            }

    # Creating and claiming trials -----------------------------------------------------------------------------
    def test_trial_numbers_are_dense_per_study(self) -> None:
        with self.storage() as store:
            a, b = store.create_study("a", "minimize"), store.create_study("b", "minimize")
            made = [store.create_trial(sid) for sid in (a.study_id, b.study_id, a.study_id, a.study_id)]
            assert [r.number for r in made if r] == [0, 0, 1, 2]
            assert len({r.trial_id for r in made if r}) == 4
            assert [r.number for r in store.get_trials(a.study_id)] == [0, 1, 2]

    def test_new_trial_fields(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            before = time.time()
            running = store.create_trial(sid, worker_id="w1", system_attrs={"budget": 3})
            waiting = store.create_trial(sid, state=TrialState.WAITING, params={"x": 1})
            assert running is not None and waiting is not None
            assert running.state is TrialState.RUNNING and running.worker_id == "w1"
            assert running.started_at is not None and before - 1 <= running.started_at <= time.time() + 1
            assert running.heartbeat_at is not None and running.system_attrs == {"budget": 3}
            assert (
                waiting.state is TrialState.WAITING
                and waiting.started_at is None
                and waiting.params == {"x": 1}
            )
            assert store.get_trial(running.trial_id) == running
            for state in (TrialState.COMPLETE, TrialState.PAUSED):
                try:
                    store.create_trial(sid, state=state)
                except ValueError:
                    pass
                else:
                    raise AssertionError(f"a trial was created {state.value}")
            assert store.get_study("s").n_trials == 2

    def test_max_trials_is_exact_and_failed_trials_free_a_slot(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            made = [store.create_trial(sid, max_trials=3) for _ in range(5)]
            assert [r.number if r else None for r in made] == [0, 1, 2, None, None]
            first = made[0]
            assert first is not None
            store.finish_trial(first.trial_id, TrialState.FAILED, failure_reason="boom")
            again = store.create_trial(sid, max_trials=3)
            assert again is not None and again.number == 3
            assert store.create_trial(sid, max_trials=3) is None
            waiting = store.create_trial(sid, state=TrialState.WAITING)  # enqueued: no limit
            assert waiting is not None and waiting.number == 4
            assert store.create_trial(sid, max_trials=4) is None

    def test_failing_a_trial_and_enqueuing_its_retry_is_one_step(self) -> None:
        """A worker filling the study while a lost trial is failed and retried cannot take the freed slot."""
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            made = [store.create_trial(sid, max_trials=2, params={"x": i}) for i in range(2)]
            lost = made[0]
            assert lost is not None
            racer: list[TrialRecord | None] = []
            thread = threading.Thread(target=lambda: racer.append(store.create_trial(sid, max_trials=2)))

            def retry(failed: TrialRecord) -> dict[str, Any]:
                assert failed.state is TrialState.FAILED and failed.failure_reason == WORKER_LOST
                thread.start()  # asks for a new trial in the middle of the step
                thread.join(0.3)
                return {"retry_of": failed.number}

            failed, copy = store.fail_trial(sid, lost.trial_id, WORKER_LOST, retry)
            thread.join()
            assert racer == [None]
            assert copy is not None and copy.state is TrialState.WAITING
            assert (copy.params, copy.system_attrs) == ({"x": 0}, {"retry_of": 0})
            assert failed.state is TrialState.FAILED and store.get_trial(lost.trial_id) == failed
            assert store.fail_trial(sid, made[1].trial_id, "boom")[1] is None  # type: ignore[union-attr]
            assert [r.state for r in store.get_trials(sid)] == [
                TrialState.FAILED,
                TrialState.FAILED,
                TrialState.WAITING,
            ]
            self._refused(
                store, lost.trial_id, lambda: store.fail_trial(sid, lost.trial_id, "again"), TrialStateError
            )

    def test_claim_takes_the_oldest_waiting_trial(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            assert store.claim_trial(sid, "w") is None
            first = store.create_trial(sid, state=TrialState.WAITING, params={"x": 1})
            store.create_trial(sid)
            second = store.create_trial(sid, state=TrialState.WAITING, params={"x": 2})
            assert first is not None and second is not None
            claimed = store.claim_trial(sid, "w")
            assert claimed is not None and claimed.trial_id == first.trial_id
            assert (claimed.state, claimed.worker_id, claimed.params) == (TrialState.RUNNING, "w", {"x": 1})
            assert claimed.started_at is not None and claimed.seq > second.seq
            next_claim = store.claim_trial(sid, "v")
            assert next_claim is not None and next_claim.trial_id == second.trial_id
            assert store.claim_trial(sid, "w") is None

    def test_paused_trial_resumes_once(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            record = store.create_trial(sid, worker_id="a")
            assert record is not None
            assert store.resume_trial(record.trial_id, "b") is None  # RUNNING, not PAUSED
            paused = store.finish_trial(record.trial_id, TrialState.PAUSED, value=0.5)
            assert paused.state is TrialState.PAUSED and paused.value == 0.5 and paused.finished_at is None
            resumed = store.resume_trial(record.trial_id, "b")
            assert resumed is not None and resumed.state is TrialState.RUNNING and resumed.worker_id == "b"
            assert store.resume_trial(record.trial_id, "c") is None
            assert store.get_trial(record.trial_id).worker_id == "b"

    # Trial contents -------------------------------------------------------------------------------------------
    def test_params_and_distributions_round_trip(self) -> None:
        values = {"lr": 3e-4, "layers": 5, "opt": {"k": [1, 2]}, "flag": None, "pair": [1, "a"]}
        dists = {"lr": FLOAT, "layers": INT, "opt": CHOICES, "flag": CHOICES, "pair": CHOICES}
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            record = store.create_trial(sid, params={"lr": values["lr"]}, distributions={"lr": FLOAT})
            assert record is not None
            store.set_trial_params(
                record.trial_id, {"layers": 5, "opt": {"k": [1, 2]}}, {"layers": INT, "opt": CHOICES}
            )
            store.set_trial_param(record.trial_id, "flag", None, CHOICES)  # a conditional one, added later
            store.set_trial_param(record.trial_id, "pair", (1, "a"), CHOICES)
            stored = store.get_trial(record.trial_id)
            assert dict(stored.params) == values
            assert dict(stored.distributions) == dists
            assert [type(v) for v in stored.params.values()] == [float, int, dict, type(None), list]
            assert store.get_trials(sid)[0] == stored

    def test_report_records_intermediate_values(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            record = store.create_trial(sid)
            assert record is not None
            for step, value in ((0, 0.9), (2, 0.5), (1, 0.7), (2, 0.4)):
                returned = store.report(record.trial_id, step, value)
            assert dict(returned.intermediate) == {0: 0.9, 1: 0.7, 2: 0.4}
            stored = store.get_trial(record.trial_id)
            assert dict(stored.intermediate) == {0: 0.9, 1: 0.7, 2: 0.4} and stored.last_intermediate == 0.4
            assert all(isinstance(k, int) for k in stored.intermediate)
            store.finish_trial(record.trial_id, TrialState.PRUNED, value=0.4)
            self._refused(
                store, record.trial_id, lambda: store.report(record.trial_id, 3, 0.1), TrialStateError
            )

    def test_user_and_system_attrs(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            record = store.create_trial(sid, system_attrs={"budget": 1})
            assert record is not None
            store.set_trial_user_attr(record.trial_id, "note", {"text": "ünïcode", "n": [1, 2]})
            store.set_trial_user_attr(record.trial_id, "note2", 7)
            store.set_trial_system_attr(record.trial_id, "budget", 9)
            store.set_trial_system_attr(record.trial_id, "checkpoint_dir", "/ckpt/trial_00000")
            stored = store.get_trial(record.trial_id)
            assert stored.user_attrs == {"note": {"text": "ünïcode", "n": [1, 2]}, "note2": 7}
            assert stored.system_attrs == {"budget": 9, "checkpoint_dir": "/ckpt/trial_00000"}
            assert stored.checkpoint_dir == "/ckpt/trial_00000"

    # Transitions and bad input ----------------------------------------------------------------------------------
    def test_finishing_records_state_value_and_reason(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            cases = (
                (TrialState.COMPLETE, 1.5, None),
                (TrialState.PRUNED, 0.25, None),
                (TrialState.FAILED, None, "ValueError: boom"),
            )
            for state, value, reason in cases:
                record = store.create_trial(sid)
                assert record is not None
                done = store.finish_trial(record.trial_id, state, value, reason)
                assert (done.state, done.value, done.failure_reason) == (state, value, reason)
                assert done.finished_at is not None and done.duration is not None and done.duration >= 0
                assert store.get_trial(record.trial_id) == done

    def test_illegal_transitions_raise_and_change_nothing(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            done = store.create_trial(sid)
            waiting = store.create_trial(sid, state=TrialState.WAITING)
            assert done is not None and waiting is not None
            store.finish_trial(done.trial_id, TrialState.COMPLETE, 1.0)
            attempts: dict[int, list[Callable[[], object]]] = {
                done.trial_id: [
                    lambda: store.finish_trial(done.trial_id, TrialState.FAILED, failure_reason="late"),
                    lambda: store.finish_trial(done.trial_id, TrialState.COMPLETE, 2.0),
                    lambda: store.set_trial_params(done.trial_id, {"x": 1}, {"x": INT}),
                ],
                waiting.trial_id: [
                    lambda: store.finish_trial(waiting.trial_id, TrialState.COMPLETE, 1.0),
                    lambda: store.finish_trial(waiting.trial_id, TrialState.PAUSED),
                ],
            }
            for trial_id, calls in attempts.items():
                for call in calls:
                    self._refused(store, trial_id, call, TrialStateError)
            assert store.finish_trial(waiting.trial_id, TrialState.FAILED, failure_reason="x").state is (
                TrialState.FAILED
            )

    def test_bad_input_changes_nothing(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            record = store.create_trial(sid, params={"x": 1}, distributions={"x": INT})
            assert record is not None
            store.report(record.trial_id, 0, 0.5)
            tid = record.trial_id
            for call in (
                lambda: store.set_trial_user_attr(tid, "bad", object()),
                lambda: store.set_trial_system_attr(tid, "bad", {1, 2}),
                lambda: store.set_trial_params(tid, {"y": object()}, {"y": CHOICES}),
            ):
                self._refused(store, tid, call, ConfigError)
            assert store.get_trial(tid).params == {"x": 1}

    def test_unknown_trial_is_a_key_error(self) -> None:
        with self.storage() as store:
            store.create_study("s", "minimize")
            try:
                store.get_trial(987654)
            except KeyError:
                pass
            else:
                raise AssertionError("an unknown trial id did not raise KeyError")

    # Change counter -----------------------------------------------------------------------------------------------
    def test_every_trial_write_advances_seq(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            a, b = store.create_trial(sid), store.create_trial(sid, state=TrialState.WAITING)
            assert a is not None and b is not None
            writes = [
                lambda: store.set_trial_param(a.trial_id, "x", 1, INT),
                lambda: store.set_trial_params(a.trial_id, {"y": 2}, {"y": INT}),
                lambda: store.report(a.trial_id, 0, 1.0),
                lambda: store.set_trial_user_attr(a.trial_id, "k", 1),
                lambda: store.set_trial_system_attr(a.trial_id, "k", 1),
                lambda: store.finish_trial(a.trial_id, TrialState.PAUSED, 1.0),
                lambda: store.resume_trial(a.trial_id, "w"),
                lambda: store.claim_trial(sid, "w"),
                lambda: store.finish_trial(a.trial_id, TrialState.COMPLETE, 1.0),
            ]
            last = max(r.seq for r in store.get_trials(sid))
            for write in writes:
                before = {r.trial_id: r for r in store.get_trials(sid)}
                write()
                changed = store.get_trials(sid, since_seq=last)
                assert len(changed) == 1, f"{len(changed)} trials changed after one write"
                assert changed[0].seq > last and changed[0] != before[changed[0].trial_id]
                last = changed[0].seq
            assert store.get_trials(sid, since_seq=last) == []

    def test_get_trials_filters_by_state_and_seq(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            records = [store.create_trial(sid) for _ in range(4)]
            ids = [r.trial_id for r in records if r]
            store.finish_trial(ids[1], TrialState.COMPLETE, 1.0)
            store.finish_trial(ids[3], TrialState.FAILED)
            mark = max(r.seq for r in store.get_trials(sid))
            store.finish_trial(ids[0], TrialState.PRUNED, 0.5)
            assert [r.number for r in store.get_trials(sid)] == [0, 1, 2, 3]
            assert [r.number for r in store.get_trials(sid, states=[TrialState.RUNNING])] == [2]
            done = store.get_trials(sid, states=(TrialState.COMPLETE, TrialState.PRUNED))
            assert [r.number for r in done] == [0, 1]
            assert [r.number for r in store.get_trials(sid, since_seq=mark)] == [0]
            assert store.get_trials(sid, states=[TrialState.COMPLETE], since_seq=mark) == []

    # Heartbeats ---------------------------------------------------------------------------------------------------
    def test_stale_running_trials_fail_as_worker_lost(self) -> None:
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            alive, lost, done = (store.create_trial(sid) for _ in range(3))
            waiting = store.create_trial(sid, state=TrialState.WAITING)
            assert alive and lost and done and waiting
            store.finish_trial(done.trial_id, TrialState.COMPLETE, 1.0)
            assert store.fail_stale_trials(sid, 3600.0) == []
            finished_beat = store.get_trial(done.trial_id).heartbeat_at
            time.sleep(0.6)
            store.heartbeat([alive.trial_id, done.trial_id])
            beat = store.get_trial(alive.trial_id).heartbeat_at
            assert beat is not None and alive.heartbeat_at is not None and beat > alive.heartbeat_at
            assert store.get_trial(done.trial_id).heartbeat_at == finished_beat  # finished trials keep theirs
            failed = store.fail_stale_trials(sid, 0.3)
            assert [r.trial_id for r in failed] == [lost.trial_id]
            assert failed[0].state is TrialState.FAILED and failed[0].failure_reason == WORKER_LOST
            assert store.get_trial(lost.trial_id) == failed[0]
            states = {r.trial_id: r.state for r in store.get_trials(sid)}
            assert (
                states[alive.trial_id] is TrialState.RUNNING
                and states[waiting.trial_id] is TrialState.WAITING
            )
            assert store.fail_stale_trials(sid, 0.3) == []

    # Concurrency --------------------------------------------------------------------------------------------------
    def test_threads_fill_a_study_to_exactly_max_trials(self) -> None:
        limit = self.n_threads * self.trials_per_thread - 3
        with self.storage() as store:
            sid = store.create_study("s", "minimize").study_id
            made: list[TrialRecord] = []
            errors: list[BaseException] = []
            lock = threading.Lock()

            def work() -> None:
                try:
                    for _ in range(self.trials_per_thread):
                        record = store.create_trial(sid, max_trials=limit)
                        if record is None:
                            return
                        store.report(record.trial_id, 0, float(record.number))
                        store.finish_trial(record.trial_id, TrialState.COMPLETE, float(record.number))
                        with lock:
                            made.append(record)
                except BaseException as exc:  # reported below: a thread's error must fail the check
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(self.n_threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            assert sorted(r.number for r in made) == list(range(limit))
            stored = store.get_trials(sid)
            assert [r.number for r in stored] == list(range(limit))
            assert all(r.state is TrialState.COMPLETE and r.value == r.number for r in stored)
            seqs = [r.seq for r in stored]
            assert len(set(seqs)) == len(seqs)

    def test_processes_fill_a_study_to_exactly_n_trials(self) -> None:
        with self.storage():
            url = self._url_or_skip()
        import lmtune

        name, total = "two-processes", self.process_trials
        lmtune.create_study(storage=url, study_name=name, space=PROCESS_SPACE).close()
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(2, timeout=120)
        workers = [ctx.Process(target=_fill_study, args=(url, name, total, seed, start)) for seed in (1, 2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=240)
        assert [w.exitcode for w in workers] == [0, 0], "a worker process failed"
        trials = lmtune.load_study(name, url).trials
        assert [t.number for t in trials] == list(range(total))
        assert all(t.state is TrialState.COMPLETE for t in trials)
        assert len({t.worker_id for t in trials}) == 2, "one process did all the work"

    def test_reopened_study_keeps_its_trials(self) -> None:
        import lmtune
        from lmtune.samplers import RandomSampler
        from lmtune.testing.functions import branin

        with self.storage():
            url = self._url_or_skip()
            first = lmtune.create_study(storage=url, study_name="resume", space=PROCESS_SPACE, seed=1)
            first.optimize(branin, n_trials=4)
            before = [json.dumps(t.to_dict(), sort_keys=True) for t in first.trials]
            first.close()
            first.storage.close()
        again = lmtune.create_study(
            storage=url,
            study_name="resume",
            space=PROCESS_SPACE,
            load_if_exists=True,
            sampler=RandomSampler(1),
        )
        again.optimize(branin, total_trials=6)
        trials = again.trials
        assert [t.number for t in trials] == list(range(6))
        assert [json.dumps(t.to_dict(), sort_keys=True) for t in trials[:4]] == before
        assert all(t.state is TrialState.COMPLETE for t in trials)
        again.storage.close()

    # Helpers -------------------------------------------------------------------------------------------------------
    @staticmethod
    def _refused(store: Storage, trial_id: int, call: Any, error: type[Exception]) -> None:
        """``call`` raises ``error`` and leaves the trial exactly as it was (seq included)."""
        before = store.get_trial(trial_id)
        try:
            call()
        except error:
            pass
        else:
            raise AssertionError(f"{error.__name__} was not raised")
        assert store.get_trial(trial_id) == before, "a refused write changed the trial"
