"""Keras 3 on PyTorch under lmtune: the example's Keras Tuner hypermodel on a real SST-2 slice, unchanged."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("keras", reason="the keras extra is not installed: pip install 'lmtune[keras]'")

import lmtune  # noqa: E402
from lmtune.exceptions import ConfigError  # noqa: E402
from lmtune.integrations.keras import (  # noqa: E402
    HyperParameters,
    KerasObjective,
    KerasPruningCallback,
    best_hyperparameters,
    objective_of,
    search,
)
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "sst2-bow"))
import keras_hypermodel  # noqa: E402
import sst2_bow  # noqa: E402

VOCABULARY = 500
# Keras converts its torch tensors with np.array(x, copy=False), which numpy 2 warns about on every batch.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


class StopAtStep(Scheduler):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_report(self, trial, history) -> Decision:
        return Decision(Action.STOP, "test") if trial.last_step >= self.step else CONTINUE


@pytest.fixture(scope="module")
def sst2(shared_dir, one_torch_thread):
    (x, y), (x_val, y_val) = sst2_bow.load(train_examples=512, dev_examples=128, vocabulary_size=VOCABULARY)
    return x, y, x_val, y_val


@pytest.fixture
def small_vocabulary(monkeypatch):
    monkeypatch.setattr(keras_hypermodel, "VOCABULARY", VOCABULARY)


@pytest.mark.usefixtures("small_vocabulary")
def test_search_tunes_the_unchanged_hypermodel_with_asha(sst2) -> None:
    x, y, x_val, y_val = sst2
    study = search(
        keras_hypermodel.build_model, x, y, epochs=3, batch_size=64, validation_data=(x_val, y_val),
        objective="val_accuracy", n_trials=4, seed=0,
    )  # fmt: skip
    assert study.direction == "maximize" and study.space.conditions == {
        "units": {"hidden_layer": (True,)},
        "dropout": {"hidden_layer": (True,)},
    }
    records = study.trials
    assert all(r.state in (lmtune.TrialState.COMPLETE, lmtune.TrialState.PRUNED) for r in records)
    for record in records:
        assert record.user_attrs["epochs"] == len(record.intermediate) == max(record.intermediate)
        if record.state is lmtune.TrialState.COMPLETE:
            assert record.value == max(record.intermediate.values())  # the best epoch, as in Keras Tuner
    assert any(r.state is lmtune.TrialState.PRUNED and r.user_attrs["epochs"] < 3 for r in records)
    assert study.best_value > 0.55  # better than chance on 128 dev sentences
    model = keras_hypermodel.build_model(best_hyperparameters(study))
    assert model.layers[-1].units == 2


@pytest.mark.usefixtures("small_vocabulary")
def test_the_pruning_callback_stops_fit_and_a_hypermodels_own_fit_is_used(sst2) -> None:
    x, y, x_val, y_val = sst2
    calls = []

    class HyperModel:  # Keras Tuner's HyperModel protocol: build(hp) and fit(hp, model, *args, **kwargs)
        def build(self, hp):
            return keras_hypermodel.build_model(hp)

        def fit(self, hp, model, *args, **kwargs):
            calls.append(sorted(kwargs))
            return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64]), **kwargs)

    study = lmtune.create_study(direction="maximize", seed=0, scheduler=StopAtStep(2))
    objective = KerasObjective(
        HyperModel(), "val_accuracy", (x, y), {"epochs": 5, "validation_data": (x_val, y_val)}
    )
    study.optimize(objective, n_trials=1)
    (record,) = study.trials
    assert record.state is lmtune.TrialState.PRUNED
    assert sorted(record.intermediate) == [1, 2] and record.user_attrs["epochs"] == 2
    assert "batch_size" in record.params and "learning_rate" in record.params  # define-by-run
    assert calls == [["callbacks", "epochs", "validation_data", "verbose"]]


@pytest.mark.usefixtures("small_vocabulary")
def test_a_metric_the_model_does_not_log_is_an_error_naming_the_logged_ones(sst2) -> None:
    x, y, _, _ = sst2
    study = lmtune.create_study(direction="maximize", seed=0)
    model = keras_hypermodel.build_model(HyperParameters.from_values({}))
    callback = KerasPruningCallback(study.ask(), monitor="val_f1")
    with pytest.raises(ConfigError, match=r"'val_f1' is not in the epoch's logs \['accuracy', 'loss'"):
        model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)


def test_objective_names_give_the_direction() -> None:
    assert objective_of("val_loss") == ("val_loss", "minimize")
    assert objective_of("val_accuracy") == ("val_accuracy", "maximize")

    class Objective:  # Keras Tuner's kt.Objective
        name, direction = "val_auc", "min"

    assert objective_of(Objective()) == ("val_auc", "minimize")
    with pytest.raises(ConfigError, match="must name a logged metric"):
        objective_of(3)
