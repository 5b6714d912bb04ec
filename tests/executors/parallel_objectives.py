"""Objectives the executor tests run in other processes (importable by name: this folder is on the path)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from lmtune.trial import Trial

LOG_ENV = "PARALLEL_TEST_LOG"


def _log(trial: Trial, event: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(
            path, "a"
        ) as log:  # one short O_APPEND write per line: lines from processes never interleave
            log.write(f"{trial.number} {os.getpid()} {event}\n")


def noop(trial: Trial) -> float:
    return float(trial.params.get("x", 0.0))


def short(trial: Trial) -> float:
    """Sleeps 30-130 ms, logging its start and end, so a test can see which trials ran where."""
    _log(trial, "start")
    time.sleep(0.03 + (trial.number * 37 % 11) / 100)
    _log(trial, "end")
    return float(trial.params["x"])


def environment(trial: Trial) -> float:
    """Records what the trial process sees: GPUs, rank variables, its pid."""
    for name in ("CUDA_VISIBLE_DEVICES", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        trial.set_user_attr(name, os.environ.get(name))
    trial.set_user_attr("pid", os.getpid())
    time.sleep(0.3)  # long enough for the pool to have every slot busy at once
    return 0.0


def crashes_on_first_attempt(trial: Trial) -> float:
    """Trial 1 kills its own process (a segfault or OOM kill looks the same); its retry completes."""
    record = trial.study.storage.get_trial(trial.trial_id)
    if trial.number == 1 and "retry_of" not in record.system_attrs:
        os.kill(os.getpid(), signal.SIGKILL)
    return float(trial.params["x"])


def raises_on_two(trial: Trial) -> float:
    if trial.number == 2:
        raise ValueError("bad configuration")
    return float(trial.params["x"])


def hangs_on_zero(trial: Trial) -> float:
    if trial.number == 0:
        time.sleep(3600)
    return float(trial.params["x"])


def writes_checkpoint_then_dies(trial: Trial) -> float:
    """The first attempt saves a checkpoint and is killed; the retry must start from it."""
    resume = trial.resume_from
    if resume is None:
        (trial.checkpoint_dir / "state.txt").write_text("step 7")
        os.kill(os.getpid(), signal.SIGKILL)
    trial.set_user_attr("resumed_state", (Path(resume) / "state.txt").read_text())
    return 1.0


def crashes_then_raises(trial: Trial) -> float:
    """Trial 1's process dies on its first attempt; the first trial after it that is not a retry raises (its
    number depends on whether the retry was queued first); every trial records the pid that ran it."""
    trial.set_user_attr("pid", os.getpid())
    record = trial.study.storage.get_trial(trial.trial_id)
    if "retry_of" not in record.system_attrs and trial.number in (2, 3):
        earlier = trial.study.storage.get_trials(trial.study.study_id)
        if not any(
            r.number in (2, 3) and r.number < trial.number and "retry_of" not in r.system_attrs
            for r in earlier
        ):
            raise ValueError("bad configuration")
    return crashes_on_first_attempt(trial)


def ddp_train(trial: Trial) -> float:
    """Plain torch data-parallel training (gloo on the CPU), run by every process of the trial."""
    import torch
    import torch.distributed as dist

    from lmtune.executors.distributed import data_parallel, shared_flag

    try:
        torch.manual_seed(0)
        model = data_parallel(torch.nn.Linear(4, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05 + 0.1 * trial.params["x"])
        data = torch.Generator().manual_seed(dist.get_rank())  # each rank trains on its own shard
        inputs = torch.randn(64, 4, generator=data)
        targets = inputs.sum(1, keepdim=True)
        for step in range(5):
            loss = ((model(inputs) - targets) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            trial.report(float(loss), step)  # recorded by rank 0 only
            if shared_flag(trial.should_stop()):  # rank 0's decision reaches every rank
                break
        weights = model.module.weight.detach().clone()
        gathered = [torch.zeros_like(weights) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, weights)
        trial.set_user_attr("ranks_in_sync", all(torch.equal(gathered[0], w) for w in gathered))
        trial.set_user_attr("world_size", dist.get_world_size())
        return float(loss)
    finally:
        dist.destroy_process_group()


CHECKPOINT_BYTES = 1000  # what ``writes_checkpoint`` saves per trial


def writes_checkpoint(trial: Trial) -> float:
    """Saves a checkpoint of CHECKPOINT_BYTES bytes, as a training objective would, and returns x."""
    (trial.checkpoint_dir / "weights.bin").write_bytes(b"\0" * CHECKPOINT_BYTES)
    return float(trial.params["x"])


def hangs_on_first_attempt(trial: Trial) -> float:
    """Trials 0 and 1 hang on their first attempt (logging their pid first); their retries and the others
    complete at once."""
    _log(trial, "start")
    record = trial.study.storage.get_trial(trial.trial_id)
    if trial.number < 2 and "retry_of" not in record.system_attrs:
        time.sleep(3600)
    return float(trial.params["x"])
