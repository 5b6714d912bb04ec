"""A corpus of malformed inputs: study files, spaces, task sections, data files, storage URLs and command arguments.

Each one must end the command with exit code 2 and one line naming the field (and how to fix it), print no
traceback, and leave the stored study byte for byte as it was (compared as an SQL dump). Most cases run in this
process through the command's main function; a few run as real subprocesses.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmtune.cli import main
from lmtune.config import load_study_file

BASE_KEYS = {
    "study": "corpus",
    "storage": "sqlite:///{db}",
    "objective": "lmtune.testing.functions:branin",
    "space": "\n  x: {type: float, low: -5, high: 10}\n  y: {type: float, low: 0, high: 15}",
    "sampler": "{name: random, seed: 0}",
    "n_trials": "2",
}
TASK = (
    "\n  type: classification\n  model: {architecture: bert}\n  max_length: 16"
    "\n  data: {train: {train}, text: text, label: label}\n  training: {epochs: 1, batch_size: 4}"
)


def study(extra: str = "", **keys: str | None) -> str:
    """A study file: the base keys with some replaced (None: removed), then ``extra`` lines."""
    merged = {**BASE_KEYS, **keys}
    return "".join(f"{k}: {v}\n" for k, v in merged.items() if v is not None) + extra


def task_study(task: str = TASK, **keys: str | None) -> str:
    return study(**{"objective": None, "space": None, "task": task, **keys})


def rows_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


GOOD_ROWS = [{"text": f"sentence number {i}", "label": ["a", "b"][i % 2]} for i in range(40)]

# name -> (study file text, or bytes; the substring the message must hold). {db}, {dir}, {train} are filled in.
STUDY_FILES: dict[str, tuple[str | bytes, str]] = {
    "empty file": ("", "the file is empty"),
    "a list": ("- 1\n- 2\n", "top level must be a mapping"),
    "a scalar": ("just text\n", "top level must be a mapping"),
    "unclosed flow": ("study: [unclosed\n", "not valid YAML"),
    "tab indentation": ("study: a\n\tn_trials: 2\n", "not valid YAML"),
    "unknown key": (study("n_trails: 3\n"), "n_trails: unknown key"),
    "non-string key": (study("1: one\n"), "Keys should be strings, but got 1"),
    "n_trials yes": (study(n_trials="yes"), "n_trials: must be a valid integer, but got 'yes'"),
    "n_trials on": (study(n_trials="on"), "n_trials: must be a valid integer, but got 'on'"),
    "n_trials true": (study(n_trials="true"), "n_trials: must be a valid integer, but got True"),
    "n_trials zero": (study(n_trials="0"), "n_trials: must be greater than 0"),
    "n_trials fraction": (study(n_trials="2.5"), "n_trials: must be a valid integer"),
    "n_trials quoted": (study(n_trials="'3'"), "n_trials: must be a valid integer"),
    "n_trials list": (study(n_trials="[3]"), "n_trials: must be a valid integer"),
    "workers on": (study("workers: on\n"), "workers: must be a valid integer"),
    "workers zero": (study("workers: 0\n"), "workers: must be greater than or equal to 1"),
    "max_failed_trials true": (
        study("max_failed_trials: true\n"),
        "max_failed_trials: must be a valid integer",
    ),
    "max_failed_trials zero": (study("max_failed_trials: 0\n"), "max_failed_trials: must be greater than 0"),
    "timeout negative": (study("timeout: -1\n"), "timeout: must be greater than 0"),
    "timeout nan": (study("timeout: .nan\n"), "timeout: must be a finite number"),
    "timeout infinite": (study("timeout: .inf\n"), "timeout: must be a finite number"),
    "timeout text": (study("timeout: soon\n"), "timeout: must be a valid number"),
    "trial_timeout zero": (study("trial_timeout: 0\n"), "trial_timeout: must be greater than 0"),
    "duplicate top-level key": (study("study: other\n"), "duplicate key 'study'"),
    "duplicate space key": (
        study(space="\n  x: {type: float, low: 0, high: 1}\n  x: {type: float, low: 0, high: 2}"),
        "duplicate key 'x'",
    ),
    "duplicate flow key": (study(sampler="{name: random, name: grid}"), "duplicate key 'name'"),
    "alias bomb": (
        study(
            "bomb:\n  a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"  {c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
        ),
        "aliases (*name) are expanded",
    ),
    "deep nesting": (study("deep: " + "[" * 5000 + "]" * 5000 + "\n"), "nests deeper than"),
    "deep block nesting": (
        study("deep:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(80))),
        "nests deeper than",
    ),
    "huge file": (study("# " + "x" * 1_100_000 + "\n"), "larger than"),
    "blank study name": (study(study="'  '"), "study: must not be blank"),
    "long study name": (study(study="a" * 10_000), "study: must be at most 200 characters"),
    "NUL in study name": (study(study='"a\\0b"'), "study: must be printable text"),
    "numeric study name": (study(study="123"), "study: must be a valid string"),
    "missing study": (study(study=None), "study: required but missing"),
    "empty storage": (study(storage='""'), "storage: must not be empty"),
    "numeric storage": (study(storage="5"), "storage: must be a valid string"),
    "unknown storage scheme": (study(storage="redis://localhost"), "unknown scheme 'redis'"),
    "mysql storage": (study(storage="mysql://u@h/db"), "unknown scheme 'mysql'"),
    "storage in a missing folder": (study(storage="sqlite:///{dir}/no/such/x.db"), "does not exist"),
    "storage is a folder": (study(storage="sqlite:///{dir}"), "folder"),
    "storage mode ro for run": (study(storage="sqlite:///{db}?mode=ro"), "read-only"),
    "direction up": (study("direction: up\n"), "direction: must be 'minimize' or 'maximize'"),
    "objective without colon": (study(objective="branin"), "objective: must be written module:function"),
    "objective module missing": (study(objective="no_such_module_xyz:f"), "cannot import module"),
    "objective function missing": (study(objective="lmtune.testing.functions:nope"), "no function 'nope'"),
    "objective module exits": (study(objective="exits_at_import:f"), "called sys.exit(3)"),
    "objective module raises": (study(objective="raises_at_import:f"), "ZeroDivisionError"),
    "objective and task": (study(task="{type: classification}"), "exactly one of"),
    "neither objective nor task": (study(objective=None), "exactly one of"),
    "space scalar": (study(space="5"), "space: must be a mapping, but got"),
    "space empty": (study(space="{}"), "space: is empty"),
    "space low above high": (study(space="\n  x: {type: float, low: 2, high: 1}"), "space.x"),
    "space bounds overflow": (
        study(space="\n  x: {type: float, low: -1.7e308, high: 1.7e308}"),
        "`high - low` must be a finite number",
    ),
    "space nan bound": (study(space="\n  x: {type: float, low: .nan, high: 1}"), "space.x"),
    "space infinite bound": (study(space="\n  x: {type: float, low: 0, high: .inf}"), "space.x"),
    "space unknown type": (study(space="\n  x: {type: complex, low: 0, high: 1}"), "space.x"),
    "space log from zero": (study(space="\n  x: {type: float, low: 0, high: 1, log: true}"), "space.x"),
    "space nan choice": (study(space="\n  c: {type: categorical, choices: [.nan, 1]}"), "no NaN or infinity"),
    "space infinite choice": (study(space="\n  c: [.inf, 1]"), "no NaN or infinity"),
    "space empty choices": (study(space="\n  c: {type: categorical, choices: []}"), "space.c"),
    "space repeated choices": (study(space="\n  c: [a, a]"), "distinct"),
    "space int with float bounds": (study(space="\n  n: {type: int, low: 0.5, high: 3}"), "space.n"),
    "space step too large": (study(space="\n  x: {type: float, low: 0, high: 1, step: 2}"), "space.x"),
    "space missing bounds": (study(space="\n  x: {type: float, low: 0}"), "space.x"),
    "space type as a list": (study(space="\n  x: {type: [float], low: 0, high: 1}"), "space.x"),
    "space condition on unknown": (
        study(space="\n  x: {type: float, low: 0, high: 1, when: {ghost: [a]}}"),
        "space",
    ),
    "grid over a continuous float": (study(sampler="{name: grid}"), "cannot be gridded"),
    "sampler without name": (study(sampler="{seed: 0}"), "sampler.name: required"),
    "sampler unknown": (study(sampler="{name: annealing}"), "sampler.name"),
    "sampler bad option": (study(sampler="{name: random, colour: red}"), "colour"),
    "sampler scalar": (study(sampler="3"), "sampler: must be a mapping, but got"),
    "scheduler unknown": (study("scheduler: {name: bogus}\n"), "scheduler"),
    "scheduler name as a list": (study("scheduler: {name: [asha], max_resource: 5}\n"), "scheduler.name"),
    "sampler name as a list": (study(sampler="{name: [tpe]}"), "sampler.name"),
    "scheduler scalar": (study("scheduler: 5\n"), "scheduler: must be a mapping, but got"),
    "scheduler first pass": (
        study("scheduler: {name: asha, max_resource: 5, first_pass: 'no'}\n"),
        "scheduler.first_pass must be true or false",
    ),
    "scheduler random draws": (
        study("scheduler: {name: bohb, max_resource: 5, random_draws: halton}\n"),
        "scheduler.random_draws must be one of ['uniform', 'sobol']",
    ),
    "scheduler random draws as a list": (
        study("scheduler: {name: bohb, max_resource: 5, random_draws: [sobol]}\n"),
        "scheduler.random_draws must be one of",
    ),
    "scheduler model as a list": (
        study("scheduler: {name: bohb, max_resource: 5, model: [gp]}\n"),
        "scheduler.model must be one of",
    ),
    "preset unknown": (study("preset: nope\n"), "preset"),
    "enqueue out of range": (study("enqueue: [{x: 100, y: 1}]\n"), "enqueue[0]"),
    "enqueue unknown parameter": (study("enqueue: [{z: 1}]\n"), "enqueue[0]"),
    "enqueue scalar": (study("enqueue: 5\n"), "enqueue: must be a valid list"),
    "executor unknown": (study("executor: dask\n"), "executor.name: must be 'local' or 'ray'"),
    "executor local with address": (
        study("executor: {name: local, address: auto}\n"),
        "`address` is an option of the ray executor",
    ),
    "executor misspelt option": (study("executor: {name: ray, adress: x}\n"), "executor.adress: unknown key"),
    "gpus negative": (study("resources: {gpus_per_trial: -1}\n"), "resources.gpus_per_trial"),
    "gpus fractional above one": (study("resources: {gpus_per_trial: 1.5}\n"), "whole number of GPUs"),
    "gpus boolean": (study("resources: {gpus_per_trial: yes}\n"), "resources.gpus_per_trial"),
    "resources unknown key": (study("resources: {gpus: 1}\n"), "resources.gpus: unknown key"),
    "auto packing several processes": (
        study("resources: {gpus_per_trial: auto, processes_per_trial: 2}\n"),
        "remove `processes_per_trial`",
    ),
    "cpus zero": (study("resources: {cpus_per_trial: 0}\n"), "resources.cpus_per_trial"),
    "processes zero": (study("resources: {processes_per_trial: 0}\n"), "resources.processes_per_trial"),
    "more GPUs than the machine": (
        study("resources: {gpus_per_trial: 2}\n"),
        "resources.gpus_per_trial: 2 GPUs per trial, but this machine has 1",
    ),
    "resources list": (study("resources: [1]\n"), "resources: must be a mapping with keys"),
    "retry negative": (study("retry: {max_retries: -1}\n"), "retry.max_retries"),
    "retry yes": (study("retry: {max_retries: yes}\n"), "retry.max_retries: must be a valid integer"),
    "retry misspelt": (study("retry: {retries: 1}\n"), "retry.retries: unknown key"),
    "heartbeat grace too short": (
        study("heartbeat: {interval: 5, grace_period: 2}\n"),
        "must be longer than `interval`",
    ),
    "heartbeat zero": (study("heartbeat: {interval: 0}\n"), "heartbeat.interval"),
    "heartbeat off": (study("heartbeat: {interval: off}\n"), "heartbeat.interval: must be a valid number"),
    "fuse maybe": (study("execution: {fuse: maybe}\n"), "execution.fuse"),
    "group size zero": (study("execution: {group_size: 0}\n"), "execution.group_size"),
    "fuse an objective": (study("execution: {fuse: true}\n"), "execution.fuse: true"),
    "fuse with workers": (study("execution: {fuse: true}\nworkers: 2\n"), "execution.fuse: true"),
    "checkpoints keep none": (study("checkpoints: {keep_best: 0}\n"), "checkpoints.keep_best"),
    "checkpoints negative size": (study("checkpoints: {max_bytes: -1}\n"), "checkpoints.max_bytes"),
    "checkpoints misspelt": (study("checkpoints: {keep: 1}\n"), "checkpoints.keep: unknown key"),
    "tracker unknown": (study("trackers: [nosuch]\n"), "trackers[0]: unknown tracker"),
    "tracker option unknown": (
        study("trackers: [{tensorboard: {colour: red}}]\n"),
        "trackers[0].tensorboard: unknown option",
    ),
    "trackers scalar": (study("trackers: 5\n"), "trackers"),
    "tracker options as a list": (
        study("trackers: [{tensorboard: [flush_secs]}]\n"),
        "trackers[0].tensorboard: options must be a mapping",
    ),
    "final evaluation top_k zero": (study("final_evaluation: {top_k: 0}\n"), "final_evaluation.top_k"),
    "final evaluation one fold": (study("final_evaluation: {folds: 1}\n"), "final_evaluation.folds"),
    "final evaluation confidence": (
        study("final_evaluation: {confidence: 1.5}\n"),
        "final_evaluation.confidence",
    ),
    "final evaluation misspelt": (study("final_evaluation: {bogus: 1}\n"), "final_evaluation.bogus"),
    "UTF-16 study file": (study().encode("utf-16"), "iconv -f utf-16"),
    "latin1 study file": (study("# caf\xe9\n").encode("latin-1"), "not UTF-8 text"),
    # task sections
    "task scalar": (task_study(task="5"), "task: must be a mapping, but got"),
    "task type unknown": (task_study(task=TASK.replace("classification", "regression")), "task.type"),
    "task without model": (
        task_study(task=TASK.replace("\n  model: {architecture: bert}", "")),
        "task.model: required",
    ),
    "task architecture mismatch": (task_study(task=TASK.replace("bert", "gpt2")), "cannot do classification"),
    "task missing data file": (task_study(task=TASK.replace("{train}", "missing.jsonl")), "task.data.train"),
    "task unknown optimizer": (
        task_study(task=TASK.replace("epochs: 1", "epochs: 1, optimizer: rmsprop")),
        "task.training: parameter optimizer: 'rmsprop' is not allowed",
    ),
    "task optimizer in the space": (
        task_study(space="\n  optimizer: [adamw, rmsprop]"),
        "space.optimizer: parameter optimizer: 'rmsprop'",
    ),
    "task learning rate as text": (
        task_study(task=TASK.replace("epochs: 1", "epochs: 1, learning_rate: fast")),
        "task.training: a value has the wrong type",
    ),
    "task learning rate bound": (
        task_study(space="\n  learning_rate: {type: float, low: -1, high: 1}"),
        "space.learning_rate",
    ),
    "task max_length yes": (
        task_study(task=TASK.replace("max_length: 16", "max_length: yes")),
        "task.max_length",
    ),
    "task unknown training parameter": (
        task_study(task=TASK.replace("epochs: 1", "epochs: 1, learning_rat: 0.1")),
        "unknown training parameter(s) ['learning_rat']",
    ),
    "task metric for another type": (task_study(task=TASK + "\n  metric: bleu"), "metric 'bleu'"),
    "task unknown key": (task_study(task=TASK + "\n  colour: red"), "task.colour: unknown key"),
    # data files
    "labels that are lists": (task_study(task=TASK.replace("{train}", "list_labels.jsonl")), "class label"),
    "blank labels": (task_study(task=TASK.replace("{train}", "blank_labels.csv")), "blank or NaN label"),
    "NaN labels": (task_study(task=TASK.replace("{train}", "nan_labels.jsonl")), "class label"),
    "mixed-type labels": (task_study(task=TASK.replace("{train}", "mixed_labels.jsonl")), "mix types"),
    "all-empty text": (task_study(task=TASK.replace("{train}", "empty_text.csv")), "empty in every row"),
    "non-text text": (task_study(task=TASK.replace("{train}", "numeric_text.jsonl")), "must be text"),
    "too few rows to split": (task_study(task=TASK.replace("{train}", "tiny.jsonl")), "would hold no rows"),
    "not gzip": (task_study(task=TASK.replace("{train}", "fake.csv.gz")), "not a complete gzip file"),
    "UTF-16 data": (task_study(task=TASK.replace("{train}", "utf16.csv")), "iconv -f utf-16"),
    "broken JSONL line": (task_study(task=TASK.replace("{train}", "broken.jsonl")), "not valid JSON"),
    "unknown data format": (task_study(task=TASK.replace("{train}", "data.xlsx")), "unknown format"),
    "one class only": (task_study(task=TASK.replace("{train}", "one_class.jsonl")), "fewer than two classes"),
}

DATA_FILES: dict[str, bytes] = {
    "train.jsonl": rows_jsonl(GOOD_ROWS).encode(),
    "list_labels.jsonl": rows_jsonl([{**r, "label": [r["label"]]} for r in GOOD_ROWS]).encode(),
    "blank_labels.csv": (
        "text,label\n" + "".join(f"row {i},{'' if i == 5 else 'a'}\n" for i in range(40))
    ).encode(),
    "nan_labels.jsonl": rows_jsonl(
        GOOD_ROWS[:5] + [{"text": "x", "label": float("nan")}] + GOOD_ROWS[5:]
    ).encode(),
    "mixed_labels.jsonl": rows_jsonl(
        [{**r, "label": i % 2 if i % 3 else str(i % 2)} for i, r in enumerate(GOOD_ROWS)]
    ).encode(),
    "empty_text.csv": ("text,label\n" + "".join(f",{'ab'[i % 2]}\n" for i in range(40))).encode(),
    "numeric_text.jsonl": rows_jsonl([{**r, "text": i} for i, r in enumerate(GOOD_ROWS)]).encode(),
    "tiny.jsonl": rows_jsonl(GOOD_ROWS[:3]).encode(),
    "fake.csv.gz": b"text,label\nnot gzip at all,a\n",
    "utf16.csv": ("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(40))).encode("utf-16"),
    "broken.jsonl": (rows_jsonl(GOOD_ROWS[:10]) + "{not json\n").encode(),
    "data.xlsx": b"PK\x03\x04",
    "one_class.jsonl": rows_jsonl([{**r, "label": "a"} for r in GOOD_ROWS]).encode(),
    "exits_at_import.py": b"import sys\nsys.exit(3)\n",
    "raises_at_import.py": b"1 / 0\n",
}

# Cases that need what a machine may have: skipped where it has it.
NEEDS_NO_CUDA = {"task device cuda"}
STUDY_FILES["task device cuda"] = (task_study(task=TASK + "\n  device: cuda"), "task.device: cuda")


@dataclass
class Workspace:
    dir: Path
    db: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def fill(self, text: str) -> str:
        return (
            text.replace("{db}", str(self.db))
            .replace("{dir}", str(self.dir))
            .replace("{train}", "train.jsonl")
        )

    def fill_case(self, case: str) -> str:
        """The study file of a corpus case, written into the workspace; its path."""
        content, _ = STUDY_FILES[case]
        path = self.dir / f"sub-{abs(hash(case))}.yaml"
        path.write_bytes(content if isinstance(content, bytes) else self.fill(content).encode())
        return str(path)

    def dump(self) -> list[str]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.iterdump())


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A folder with data files and a database that holds one finished study."""
    folder = tmp_path_factory.mktemp("corpus")
    for name, content in DATA_FILES.items():
        (folder / name).write_bytes(content)
    (folder / "foreign.db").unlink(missing_ok=True)
    with sqlite3.connect(folder / "foreign.db") as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    (folder / "garbage.db").write_bytes(b"this is not a database" * 100)
    ws = Workspace(folder, folder / "stored.db")
    good = folder / "good.yaml"
    good.write_text(ws.fill(study()))
    code, out, err = invoke("run", str(good))
    assert code == 0, err
    return ws


def _assert_one_clear_line(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmtune: error: "), err
    assert expected in err, err


@pytest.mark.parametrize("case", sorted(STUDY_FILES))
def test_a_bad_study_file_is_refused_before_anything_is_written(
    case: str, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case in NEEDS_NO_CUDA:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    monkeypatch.setenv("LMTUNE_FAKE_GPUS", "1")
    monkeypatch.syspath_prepend(str(workspace.dir))  # where the objective modules of the study files live
    expected = STUDY_FILES[case][1]
    path = Path(workspace.fill_case(case))
    before = workspace.dump()
    files_before = sorted(p.name for p in workspace.dir.iterdir())
    commands = ["run"] if case == "storage mode ro for run" else ["validate", "run"]
    for command in commands:
        code, _, err = invoke(command, str(path))
        _assert_one_clear_line(code, err, expected)
    assert workspace.dump() == before
    assert sorted(p.name for p in workspace.dir.iterdir()) == files_before


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# name -> (arguments, the substring the message must hold); {url}, {dir} are filled in.
COMMANDS: dict[str, tuple[list[str], str]] = {
    "run with empty --storage": (["run", "{dir}/good.yaml", "--storage", ""], "--storage: must not be empty"),
    "worker with empty --storage": (
        ["worker", "{dir}/good.yaml", "--storage", ""],
        "--storage: must not be empty",
    ),
    "run with read-only --storage": (["run", "{dir}/good.yaml", "--storage", "{url}?mode=ro"], "read-only"),
    "run with an unknown scheme": (["run", "{dir}/good.yaml", "--storage", "redis://h"], "unknown scheme"),
    "run a missing file": (["run", "{dir}/nope.yaml"], "does not exist"),
    "validate a folder": (["validate", "{dir}"], "is a directory"),
    "run with zero trials": (["run", "{dir}/good.yaml", "--n-trials", "0"], "--n-trials"),
    "run with zero workers": (["run", "{dir}/good.yaml", "--workers", "0"], "--workers"),
    "worker without n_trials": (["worker", "{dir}/define.yaml"], "a worker needs `n_trials:`"),
    "status with empty --storage": (["status", "--storage", ""], "--storage: must not be empty"),
    "status of a missing database": (["status", "--storage", "sqlite:///{dir}/absent.db"], "no database"),
    "status of a foreign database": (
        ["status", "--storage", "sqlite:///{dir}/foreign.db"],
        "not an lmtune database",
    ),
    "report of a foreign database": (
        ["report", "corpus", "--storage", "sqlite:///{dir}/foreign.db", "-o", "{dir}/r.html"],
        "not an lmtune database",
    ),
    "list a foreign database": (
        ["studies", "list", "--storage", "sqlite:///{dir}/foreign.db"],
        "not an lmtune",
    ),
    "status of a file that is no database": (
        ["status", "--storage", "sqlite:///{dir}/garbage.db"],
        "not a database",
    ),
    "status with a bad mode": (["status", "--storage", "{url}?mode=bogus"], "mode='bogus'"),
    "status of an unknown study": (["status", "nope", "--storage", "{url}"], "no study named 'nope'"),
    "best of an unknown study": (["best", "nope", "--storage", "{url}"], "no study named 'nope'"),
    "delete an unknown study": (
        ["studies", "delete", "nope", "--storage", "{url}", "--yes"],
        "no study named",
    ),
    "export to a missing folder": (
        ["export", "corpus", "--storage", "{url}", "--format", "csv", "-o", "{dir}/no/x.csv"],
        "--output: folder",
    ),
    "export to an unwritable place": (
        ["export", "corpus", "--storage", "{url}", "--format", "csv", "-o", "/proc/lmtune-export.csv"],
        "--output: cannot write",
    ),
    "export in an unknown format": (
        ["export", "corpus", "--storage", "{url}", "--format", "xml"],
        "--format",
    ),
    "upgrade a mysql database": (["db", "upgrade", "mysql://u@h/db"], "not mysql"),
    "dashboard on an unknown host": (
        ["dashboard", "--storage", "{url}", "--host", "no-such-host.invalid", "--port", "0"],
        "--host no-such-host.invalid",
    ),
    "dashboard on a busy port": (
        ["dashboard", "--storage", "{url}", "--port", "{busy}"],
        "cannot listen there",
    ),
    "dashboard on a port out of range": (["dashboard", "--storage", "{url}", "--port", "70000"], "--port"),
}
CLICK_USAGE = {
    "validate a folder",
    "run with zero trials",
    "run with zero workers",
    "export in an unknown format",
    "dashboard on a port out of range",
}


@pytest.mark.parametrize("case", sorted(COMMANDS))
def test_bad_command_arguments_are_refused_with_one_message(case: str, workspace: Workspace) -> None:
    (workspace.dir / "define.yaml").write_text(workspace.fill(study(n_trials=None, space=None)))
    args, expected = COMMANDS[case]
    busy = _busy_port()
    foreign = (workspace.dir / "foreign.db").read_bytes()
    before = workspace.dump()
    try:
        filled = [
            a.replace("{url}", workspace.url)
            .replace("{dir}", str(workspace.dir))
            .replace("{busy}", str(busy.getsockname()[1]))
            for a in args
        ]
        code, _, err = invoke(*filled)
    finally:
        busy.close()
    if (
        case in CLICK_USAGE
    ):  # the argument parser's own message: a usage line, then the error naming the option
        assert code == 2 and "Traceback" not in err and expected in err, err
    else:
        _assert_one_clear_line(code, err, expected)
    assert workspace.dump() == before
    assert (workspace.dir / "foreign.db").read_bytes() == foreign  # reading never adds tables to it


DAMAGE = {
    "a trial with bad JSON": "UPDATE lmtune_trials SET params = '{not json' WHERE number = 0",
    "a trial in an unknown state": "UPDATE lmtune_trials SET state = 'SLEEPING' WHERE number = 1",
    "a study with bad attributes": "UPDATE lmtune_studies SET attrs = '[1, 2' WHERE name = 'corpus'",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["status", "run"])
def test_a_damaged_row_is_one_message_naming_it(
    damage: str, command: str, workspace: Workspace, tmp_path: Path
):
    db = tmp_path / "damaged.db"
    # SQLite's backup copies what the write-ahead log holds too; the main file alone may lack it while the
    # storage that wrote it is still open in this process.
    with sqlite3.connect(workspace.db) as source, sqlite3.connect(db) as conn:
        source.backup(conn)
        conn.execute(DAMAGE[damage])
    args = (
        ["status", "--storage", f"sqlite:///{db}"]
        if command == "status"
        else ["run", str(workspace.dir / "good.yaml"), "--storage", f"sqlite:///{db}", "--n-trials", "3"]
    )
    code, _, err = invoke(*args)
    _assert_one_clear_line(code, err, "damaged row")


SUBPROCESS_CASES: dict[str, tuple[Callable[[Workspace], list[str]], str]] = {
    "deep nesting": (lambda ws: ["validate", ws.fill_case("deep nesting")], "nests deeper than"),
    "alias bomb": (lambda ws: ["validate", ws.fill_case("alias bomb")], "aliases"),
    "foreign database": (
        lambda ws: ["status", "--storage", f"sqlite:///{ws.dir}/foreign.db"],
        "not an lmtune",
    ),
    "module that exits": (lambda ws: ["run", ws.fill_case("objective module exits")], "sys.exit(3)"),
}


@pytest.mark.parametrize("case", sorted(SUBPROCESS_CASES))
def test_bad_input_in_a_real_process_exits_2_without_a_traceback(case: str, workspace: Workspace) -> None:
    make_args, expected = SUBPROCESS_CASES[case]
    before = workspace.dump()
    result = subprocess.run(
        [sys.executable, "-m", "lmtune.cli", *make_args(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workspace.dir,
    )
    _assert_one_clear_line(result.returncode, result.stderr, expected)
    assert workspace.dump() == before


def test_the_corpus_holds_at_least_a_hundred_inputs() -> None:
    assert len(STUDY_FILES) + len(COMMANDS) + len(DAMAGE) * 2 + len(SUBPROCESS_CASES) >= 100


def test_well_formed_files_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(
        study(
            "timeout: 1e3\nheartbeat: {interval: 1e0, grace_period: 3e1}\nexecution: {fuse: false}\n",
            space="\n  x: &unit {type: float, low: 0, high: 1}\n  y: *unit\n  z: {<<: *unit, high: 2}"
            "\n  answer: [yes, no, on]",
            storage="memory://",
        )
    )
    spec = load_study_file(path)
    assert spec.timeout == 1000.0 and spec.execution.heartbeat.grace_period == 30.0
    assert spec.execution.fuse == "false"
    assert spec.space["y"] == spec.space["x"] and spec.space["z"].high == 2  # type: ignore[index, union-attr]
    assert spec.space["answer"].choices == ("yes", "no", "on")  # type: ignore[index, union-attr]
