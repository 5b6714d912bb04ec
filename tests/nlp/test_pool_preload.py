"""The local pool's fork server imports torch, transformers and the NLP package once for a study of the built-in
fine-tuning task (and only then), without starting a thread or CUDA, and the trials forked from it run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from nlp_tasks import trec_task

from lmtune.executors.local import forkserver_modules
from lmtune.executors.ref import FileObjective
from lmtune.nlp import load_task

HERE = Path(__file__).resolve().parent


def _tiny_task(data_dir: Path) -> dict:
    spec = trec_task(data_dir, epochs=1, num_layers=1, hidden_size=32, ffn_size=64)
    spec["data"].update(max_train_examples=64, max_eval_examples=32)
    return spec


def _fork_server_after(study: dict, tmp_path: Path) -> dict:
    """Run the study file with ``lmtune run`` in a fresh process; its fork server, as that process sees it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads the fork server's threads and libraries from /proc")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"study": "pool", "workers": 2, "n_trials": 2, **study}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(HERE / "pool_fork_server.py"), str(path), f"sqlite:///{tmp_path / 'pool.db'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded(libraries: list[str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in libraries)


def test_the_preload_list_holds_the_nlp_modules_only_for_a_task(data_dir: Path) -> None:
    task = load_task(_tiny_task(data_dir), Path("."))
    preload = forkserver_modules(FileObjective("study.yaml", task.process_modules()))
    assert {"torch", "transformers", "lmtune.nlp.task", "transformers.models.bert.modeling_bert"} <= set(
        preload
    )
    plain = forkserver_modules(FileObjective("study.yaml"))
    assert plain == ["lmtune.executors.trial_process", "lmtune.config"]
    assert forkserver_modules(lambda trial: 0.0) == ["lmtune.executors.trial_process"]


def test_pool_trials_of_an_nlp_study_run_from_a_fork_server_that_imported_torch(
    data_dir: Path, tmp_path: Path
) -> None:
    space = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    server = _fork_server_after({"task": _tiny_task(data_dir), "space": space}, tmp_path)
    assert server["states"] == ["COMPLETE", "COMPLETE"]
    assert _loaded(server["libraries"], "libtorch") and _loaded(server["libraries"], "tokenizers")
    # Forking is safe: one thread, and no CUDA driver loaded (each trial chooses its GPUs before CUDA starts).
    assert server["threads"] == 1 and not _loaded(server["libraries"], "libcuda")


def test_the_fork_server_of_another_study_imports_no_torch(tmp_path: Path) -> None:
    space = {"x": {"type": "float", "low": 0, "high": 1}}
    server = _fork_server_after({"objective": "pool_fork_server:noop", "space": space}, tmp_path)
    assert server["states"] == ["COMPLETE", "COMPLETE"]
    assert not _loaded(server["libraries"], "libtorch") and server["threads"] == 1
