"""Tracker outputs read back with each tool's own reader: TensorBoard's EventAccumulator, MLflow's client, and
W&B's record protocol buffers."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

import lmtune
from lmtune.exceptions import ConfigError
from lmtune.integrations.trackers import TrackerSpec, log_study_result, make_trackers, parse_trackers
from lmtune.samplers import RandomSampler
from lmtune.trial import TrialState

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "act": {"type": "categorical", "choices": ["relu", "gelu"]},
}


PROVENANCE = {"provenance": {"task": {"metric": "accuracy"}}}  # what a study file's task: section stores
SUMMARY = {  # what the task's end-of-study step returns
    "metric": "accuracy",
    "test": {"accuracy": 0.9, "loss": 0.3},
    "test_interval": [0.85, 0.94],
    "output_dir": "best_model",
}


def objective(trial: lmtune.Trial) -> float:
    """Evaluations as a fine-tuning trial records them: every metric by step in eval_history."""
    history = []
    for step in range(3):
        accuracy = trial.params["lr"] * (3 - step)
        history.append(
            {"step": step, "optimizer_step": 10 * step, "accuracy": accuracy, "loss": 1.0 - accuracy}
        )
        trial.set_user_attr("eval_history", history)
        trial.report(accuracy, step)
    if trial.number == 1:
        raise lmtune.TrialPruned()
    if trial.number == 2:
        raise RuntimeError("diverged")
    return trial.params["lr"]


def _run(callbacks: list) -> lmtune.Study:
    study = lmtune.create_study(
        space=SPACE,
        sampler=RandomSampler(seed=0),
        study_name="tracked",
        direction="maximize",
        attrs=PROVENANCE,
    )
    study.optimize(objective, n_trials=4, callbacks=callbacks)
    log_study_result(callbacks, study, SUMMARY)
    return study


def test_tensorboard_scalars_and_hparams(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    study = _run(make_trackers(parse_trackers(["tensorboard"]), tmp_path))
    root = tmp_path / "tensorboard" / "tracked"
    runs = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert runs == ["best", *(f"trial_0000{i}" for i in range(4))]
    first = study.trials[0]
    acc = EventAccumulator(str(root / "trial_00000"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"accuracy", "loss"}  # the task's names, not intermediate/value
    curve = [(e.step, e.value) for e in acc.Scalars("accuracy")][:3]
    assert curve == [(s, pytest.approx(v)) for s, v in sorted(first.intermediate.items())]
    assert acc.Scalars("accuracy")[-1].value == pytest.approx(first.value)
    assert acc.Scalars("loss")[0].value == pytest.approx(1 - first.intermediate[0])
    best = EventAccumulator(str(root / "best"))
    best.Reload()
    assert best.Scalars("test_accuracy")[0].value == pytest.approx(0.9)
    assert best.Scalars("test_accuracy_low")[0].value == pytest.approx(0.85)
    best_start = plugin_data_pb2.HParamsPluginData.FromString(
        best.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    )
    assert best_start.session_start_info.hparams["lr"].number_value == pytest.approx(study.best_params["lr"])
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["lr"].number_value == pytest.approx(first.params["lr"])
    assert start.session_start_info.hparams["act"].string_value == first.params["act"]
    failed = EventAccumulator(str(root / "trial_00002"))
    failed.Reload()
    end = plugin_data_pb2.HParamsPluginData.FromString(
        failed.PluginTagToContent("hparams")["_hparams_/session_end_info"]
    )
    assert end.session_end_info.status == api_pb2.STATUS_FAILURE
    experiment = EventAccumulator(str(root))
    experiment.Reload()
    exp = plugin_data_pb2.HParamsPluginData.FromString(
        experiment.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    infos = {h.name: h for h in exp.hparam_infos}
    assert [v.string_value for v in infos["act"].domain_discrete.values] == ["relu", "gelu"]
    assert infos["lr"].domain_interval.max_value == pytest.approx(0.1)
    assert [m.name.tag for m in exp.metric_infos] == ["accuracy", "loss"]


def test_mlflow_nested_runs(tmp_path: Path, artifacts: Path) -> None:
    from mlflow.tracking import MlflowClient

    study = _run(make_trackers(parse_trackers([{"mlflow": {"experiment": "exp"}}]), tmp_path))
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("exp")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("lmtune.role") == "study"]
    trials = {int(r.data.tags["lmtune.trial"]): r for r in runs if r.data.tags.get("lmtune.role") == "trial"}
    assert sorted(trials) == [0, 1, 2, 3]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials.values())
    assert [trials[i].info.status for i in range(4)] == ["FINISHED", "KILLED", "FAILED", "FINISHED"]
    record = study.trials[0]
    assert trials[0].data.params == {"lr": json.dumps(record.params["lr"]), "act": record.params["act"]}
    assert set(trials[0].data.metrics) == {"accuracy", "loss"}  # the task's names, not intermediate/value
    assert trials[0].data.metrics["accuracy"] == pytest.approx(record.value)
    history = client.get_metric_history(trials[0].info.run_id, "accuracy")
    assert [(m.step, m.value) for m in history][:3] == [
        (s, pytest.approx(v)) for s, v in record.intermediate.items()
    ]
    assert trials[2].data.tags["lmtune.failure_reason"] == "RuntimeError: diverged"
    best = client.get_metric_history(parent.info.run_id, "best_accuracy")
    assert best[-1].value == pytest.approx(study.best_value)
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED" and all(r.info.status != "RUNNING" for r in runs)
    assert parent.data.metrics["test_accuracy"] == pytest.approx(0.9)
    assert parent.data.metrics["test_accuracy_high"] == pytest.approx(0.94)
    assert parent.data.params == {"lr": json.dumps(study.best_params["lr"]), "act": study.best_params["act"]}
    assert parent.data.tags["lmtune.best_trial"] == str(study.best_trial.number)
    read_back = {  # what MLflow's own client reads back, kept for a person to look at
        "parent": {
            "status": parent.info.status,
            "params": parent.data.params,
            "metrics": parent.data.metrics,
        },
        "trials": {
            n: {"status": r.info.status, "metrics": r.data.metrics} for n, r in sorted(trials.items())
        },
    }
    (artifacts / "mlflow-runs.json").write_text(json.dumps(read_back, indent=2))


def _wandb_records(path: Path):  # type: ignore[no-untyped-def]
    """The protocol-buffer records of a W&B run file (a log of 32 KiB blocks after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(pending)


def test_wandb_offline_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    study = _run(make_trackers([TrackerSpec("wandb", {"dir": "wb"})], tmp_path))
    files = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 5
    seen = {}
    for path in files:
        # W&B's service process may still be writing the file when finish() returns on a busy machine.
        deadline = time.monotonic() + 30
        while True:
            runs = [r.run for r in _wandb_records(path) if r.WhichOneof("record_type") == "run"]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        summary = {
            i.key: json.loads(i.value_json)
            for r in _wandb_records(path)
            if r.WhichOneof("record_type") == "summary"
            for i in r.summary.update
            if i.key
        }
        config = {i.key: json.loads(i.value_json) for i in runs[0].config.update if not i.key.startswith("_")}
        assert runs[0].run_group == "tracked"
        seen[runs[0].display_name] = (config, summary)
    assert sorted(seen) == ["study", *(f"trial-{i}" for i in range(4))]
    config, summary = seen["trial-0"]
    assert config == dict(study.trials[0].params)
    assert summary["accuracy"] == pytest.approx(study.trials[0].value) and summary["state"] == "COMPLETE"
    assert "value" not in summary and "intermediate" not in summary
    logged = {
        i.key or "/".join(i.nested_key)
        for path in files
        for r in _wandb_records(path)
        if r.WhichOneof("record_type") == "history"
        for i in r.history.item
    }
    assert {"accuracy", "loss"} <= logged and "intermediate" not in logged
    config, summary = seen["study"]
    assert config == dict(study.best_params) and summary["test_accuracy"] == pytest.approx(0.9)
    assert seen["trial-2"][1]["state"] == "FAILED"


def test_parse_trackers_checks_names_and_options() -> None:
    assert parse_trackers(None) == []
    assert parse_trackers({"tensorboard": {"logdir": "x"}}) == [TrackerSpec("tensorboard", {"logdir": "x"})]
    with pytest.raises(ConfigError, match="unknown tracker 'comet'"):
        parse_trackers(["comet"])
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['path'\]; allowed: \['logdir'\]"):
        parse_trackers([{"tensorboard": {"path": "x"}}])
    with pytest.raises(ConfigError, match="must be a name"):
        parse_trackers([["tensorboard"]])


def test_unfinished_trials_are_not_logged(tmp_path: Path) -> None:
    (tracker,) = make_trackers(parse_trackers(["tensorboard"]), tmp_path)
    study = lmtune.create_study(space=SPACE, sampler=RandomSampler(seed=0), study_name="paused")
    trial = study.ask()
    assert trial is not None
    record = study.tell(trial, state=TrialState.PAUSED)
    tracker(study, record)
    assert not (tmp_path / "tensorboard" / "paused").exists()


def test_lmtune_run_closes_the_mlflow_parent_run_with_the_best_configuration(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from mlflow.tracking import MlflowClient

    from lmtune.cli import main

    (tmp_path / "study.yaml").write_text(
        "study: closed\nobjective: lmtune.testing.functions:branin\n"
        "space:\n  x: {type: float, low: -5, high: 10}\n  y: {type: float, low: 0, high: 15}\n"
        "sampler: {name: random, seed: 0}\nn_trials: 3\ntrackers: [mlflow]\n"
    )
    db = tmp_path / "s.db"
    result = CliRunner().invoke(main, ["run", str(tmp_path / "study.yaml"), "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("closed").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("lmtune.role") == "study"]
    assert parent.info.status == "FINISHED" and len(runs) == 4
    assert set(parent.data.params) == {"x", "y"} and "best_value" in parent.data.metrics
