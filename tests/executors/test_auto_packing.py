"""``resources: {gpus_per_trial: auto}`` in the local pool: real trial processes on faked GPUs, measured by a probe
that replays recorded figures (MiniLM-L6 on SST-2 at batch 32 on one H100: one process 42.8 steps/s, 4 make 158,
8 make 240), checking in storage that the trials it measures really run together on the GPUs they were given.

Trials run until the probe has measured its largest recorded number of trials (it then writes a file in the
study's checkpoint folder), so slow process starts on a busy machine cannot end a level before it is measured;
trials started after that run a fixed time at the packing kept."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

import lmtune
from lmtune.executors import LocalExecutor, Resources
from lmtune.executors.gpus import FAKE_GPUS_ENV, GpuSlots
from lmtune.executors.packing import (
    PROGRESS_ATTR,
    AutoPacker,
    Measurement,
    PackedTrial,
    ProgressReport,
    StorageProbe,
    parse_compute_apps,
)
from lmtune.samplers import RandomSampler
from lmtune.storage.base import Storage

GIB = 1 << 30
AFTER_SECONDS = 1.0  # how long a trial runs once the measuring is over
RELEASED = "released"  # file in the study's checkpoint folder: the largest recorded level has been measured
ISSUE_H100 = {1: 42.8, 2: 84.0, 4: 158.0, 8: 240.0}  # steps/s of MiniLM-L6 trials sharing one H100


def packed_objective(trial: lmtune.Trial) -> float:
    """Records, from inside its own process, the GPU it sees and when it ran (Unix seconds)."""
    trial.set_user_attr("gpu", os.environ.get("CUDA_VISIBLE_DEVICES"))
    trial.set_user_attr("start", time.time())
    released = trial.study.checkpoint_root / RELEASED
    if released.exists():
        time.sleep(AFTER_SECONDS)
    while not released.exists():
        time.sleep(0.05)
    trial.set_user_attr("end", time.time())
    return 0.0


class RecordedProbe:
    """Replays recorded steps/s per number of trials on one GPU, once the trials it is shown all run: each has
    begun its objective and not ended, and sees the GPU the pool gave it. Once the largest recorded number is
    measured it writes ``release`` (the trials it holds then end)."""

    def __init__(self, rates: dict[int, float], gib_per_trial: float, gpu_gib: float = 80.0) -> None:
        self.rates, self.gib_per_trial, self.gpu_gib = rates, gib_per_trial, gpu_gib
        self.seen: list[dict[str, int]] = []  # trials per GPU at each measurement
        self.decided_at = 0.0
        self.release: Path | None = None

    def gpu_bytes(self) -> int:
        return int(self.gpu_gib * GIB)

    def measure(self, storage: Storage, trials: Sequence[PackedTrial], since: float) -> Measurement | None:
        attrs = [storage.get_trial(t.trial_id).user_attrs for t in trials]
        if any("start" not in a or "end" in a for a in attrs):
            return None
        assert [a["gpu"] for a in attrs] == [t.gpu for t in trials]
        loads = Counter(t.gpu for t in trials)
        self.seen.append(dict(sorted(loads.items())))
        self.decided_at = time.time()
        level = max(loads.values())
        if level == max(self.rates) and self.release is not None:
            self.release.parent.mkdir(parents=True, exist_ok=True)
            self.release.touch()
        return Measurement(level, self.rates[level], int(level * self.gib_per_trial * GIB))


def _run(tmp_path, monkeypatch, gpus: int, probe: RecordedProbe, total: int, workers: int | None = None):
    monkeypatch.setenv(FAKE_GPUS_ENV, str(gpus))
    study = lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'auto.db'}",
        study_name="auto",
        space={"x": {"type": "float", "low": 0, "high": 1}},
        sampler=RandomSampler(seed=0),
    )
    probe.release = study.checkpoint_root / RELEASED
    executor = LocalExecutor(workers=workers, resources=Resources(auto_packing=True), packing_probe=probe)
    executor.optimize(study, packed_objective, total_trials=total)
    assert all(r.state is lmtune.TrialState.COMPLETE for r in study.trials)
    return executor, [r.user_attrs for r in study.trials]


def _most_sharing_after(records: list[dict], moment: float) -> int:
    """The most trials on one GPU at the start of any trial that began after ``moment``."""
    most = 0
    for later in (r for r in records if r["start"] > moment):
        sharing = [
            r for r in records if r["gpu"] == later["gpu"] and r["start"] <= later["start"] <= r["end"]
        ]
        most = max(most, len(sharing))
    return most


def test_packing_rises_while_throughput_rises_and_keeps_the_fewest_near_the_best(
    tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="lmtune")
    probe = RecordedProbe({1: 100.0, 2: 180.0, 4: 186.0}, gib_per_trial=2.0)  # 4 per GPU adds only 3%
    executor, records = _run(tmp_path, monkeypatch, gpus=2, probe=probe, total=12)
    assert probe.seen == [{"0": 1, "1": 1}, {"0": 2, "1": 2}, {"0": 4, "1": 4}]
    assert executor.packer is not None and executor.packer.decision is not None
    assert executor.packer.decision.trials == 2
    assert Counter(r["gpu"] for r in records) == {"0": 6, "1": 6}
    later = [r for r in records if r["start"] > probe.decided_at]
    assert later and _most_sharing_after(records, probe.decided_at) <= 2
    log = caplog.text
    assert "2 trial(s) per GPU make 180.0 steps/s per GPU, 2.00 GiB per trial; trying 4" in log
    assert (
        "keeping 2 trial(s) per GPU: 2 trial(s) per GPU make 180.0 steps/s (1.8x one trial), the fewest within "
        "5% of the best measured; measuring stopped: 4 per GPU added less than 5% over 2"
    ) in log


def test_packing_stops_where_memory_would_not_fit(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="lmtune")
    probe = RecordedProbe(ISSUE_H100, gib_per_trial=9.0)  # 8 x 9 GiB fit in 90% of 80 GiB, 16 would not
    executor, records = _run(tmp_path, monkeypatch, gpus=1, probe=probe, total=10)
    assert [s["0"] for s in probe.seen] == [1, 2, 4, 8]
    assert executor.packer is not None and executor.packer.decision is not None
    assert executor.packer.decision.trials == 8 and executor.packer.decision.steps_per_second == 240.0
    assert {r["gpu"] for r in records} == {"0"}
    assert (
        "keeping 8 trial(s) per GPU: 8 trial(s) per GPU make 240.0 steps/s (5.6x one trial), the fewest "
        "within 5% of the best measured; measuring stopped: more would not fit in 90% of 80.0 GiB at 9.00 GiB "
        "per trial"
    ) in caplog.text


def test_workers_cap_the_trials_per_gpu(tmp_path, monkeypatch):
    probe = RecordedProbe({1: 42.8, 2: 84.0}, gib_per_trial=1.0)
    executor, _ = _run(tmp_path, monkeypatch, gpus=2, probe=probe, total=4, workers=4)
    assert probe.seen == [{"0": 1, "1": 1}, {"0": 2, "1": 2}]  # 4 workers on 2 GPUs: 2 per GPU at most
    assert executor.packer is not None and executor.packer.decision is not None
    assert executor.packer.decision.trials == 2
    assert executor.packer.decision.reason.endswith(
        "measuring stopped: 2 per GPU is the most the workers allow"
    )


class SilentProbe:
    """Trials that never report progress: no measurement comes."""

    def gpu_bytes(self) -> int | None:
        return None

    def measure(self, storage: Storage, trials: Sequence[PackedTrial], since: float) -> Measurement | None:
        return None


def test_without_measurements_the_packer_keeps_one_trial_per_gpu_and_says_why(caplog):
    caplog.set_level(logging.INFO, logger="lmtune")
    slots = GpuSlots(["0", "1"], 1)
    packer = AutoPacker(slots, SilentProbe(), give_up_after=60)
    running = [PackedTrial(1, None, "0"), PackedTrial(2, None, "1")]
    packer.update(None, running[:1], now=0.0)  # GPU 1 is idle: no measuring yet
    packer.update(None, running, now=10.0)
    packer.update(None, running, now=69.0)
    assert packer.decision is None
    packer.update(None, running, now=71.0)
    assert packer.decision is not None and packer.decision.trials == 1 and slots.per_gpu == 1
    assert "no throughput measured in 60 s with 1 trial(s) per GPU" in caplog.text
    assert "unknown memory (not limiting)" in caplog.text


def test_storage_probe_measures_steps_per_second_from_progress_reports(tmp_path):
    study = lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'probe.db'}", space={"x": {"type": "float", "low": 0, "high": 1}}
    )
    trials = [study.ask(), study.ask(), study.ask()]
    storage = study.storage
    probe = StorageProbe(warmup=5.0, window=10.0)
    packed = [PackedTrial(t.trial_id, None, gpu) for t, gpu in zip(trials, ["0", "0", "1"], strict=True)]

    def progress(trial, steps, at, peak_gib):
        storage.set_trial_user_attr(
            trial.trial_id, PROGRESS_ATTR, {"steps": steps, "time": at, "peak_bytes": int(peak_gib * GIB)}
        )

    for trial in trials:
        progress(trial, 3, 1000.0 + 2, 1.0)  # during the warm-up: ignored
    assert probe.measure(storage, packed, since=1000.0) is None
    progress(trials[0], 100, 1006.0, 1.0)
    progress(trials[1], 50, 1006.0, 1.5)
    progress(trials[2], 10, 1006.0, 1.0)
    assert probe.measure(storage, packed, since=1000.0) is None  # first reports after the warm-up
    progress(trials[0], 300, 1016.0, 1.0)  # 20 steps/s
    progress(trials[1], 150, 1016.0, 2.0)  # 10 steps/s
    progress(trials[2], 14, 1012.0, 1.0)  # too short a window yet
    found = probe.measure(storage, packed, since=1000.0)
    assert found is not None
    assert found.trials == 2 and found.steps_per_second == pytest.approx(2 * 15.0)  # 2 per GPU x mean rate
    assert found.peak_bytes == 2 * 2 * GIB


def test_progress_reports_are_written_at_most_once_per_interval(tmp_path):
    study = lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'report.db'}", space={"x": {"type": "float", "low": 0, "high": 1}}
    )
    trial = study.ask()
    report = ProgressReport(trial, interval=3600.0)
    report.update(5, peak_bytes=7)
    report.update(6)
    stored = trial.user_attrs[PROGRESS_ATTR]
    assert (
        stored["steps"] == 5
        and stored["peak_bytes"] == 7
        and stored["time"] == pytest.approx(time.time(), abs=60)
    )


def test_nvidia_smi_memory_per_process_is_read():
    text = "1234, 5120\n1234, 1024\n77, [N/A]\n88, 300\n"
    assert parse_compute_apps(text) == {1234: 6144 << 20, 88: 300 << 20}
