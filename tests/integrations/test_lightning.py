"""The Lightning callback in real studies: it reports each validation and its pruning stops the fit."""

from __future__ import annotations

import lightning
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import lmtune
from lmtune.exceptions import ConfigError, TrialPruned
from lmtune.integrations.lightning import LmtuneCallback
from lmtune.schedulers import MedianStopping
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler

MAX_EPOCHS = 6


class Regressor(lightning.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loaders() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(256, 1, generator=generator)
    train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=32)
    val = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
    return train, val


def fit(trial: lmtune.Trial, callbacks: list) -> lightning.Trainer:
    torch.manual_seed(0)
    model = Regressor(trial.suggest_float("lr", 1e-4, 0.3, log=True))
    trainer = lightning.Trainer(
        max_epochs=MAX_EPOCHS,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    train, val = loaders()
    trainer.fit(model, train, val)
    return trainer


class StopAtStep(Scheduler):
    """Stops every trial once it reports ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_report(self, trial, history) -> Decision:
        return Decision(Action.STOP, "test") if trial.last_step >= self.step else CONTINUE


def test_pruning_stops_the_fit_at_the_epoch_the_scheduler_says() -> None:
    study = lmtune.create_study(seed=0, scheduler=StopAtStep(2))
    epochs = []

    def objective(trial):
        callback = LmtuneCallback(trial, monitor="val_loss")
        trainer = fit(trial, [callback])
        epochs.append(trainer.current_epoch)
        callback.check_pruned()
        return trainer.callback_metrics["val_loss"].item()

    study.optimize(objective, n_trials=1)
    (record,) = study.trials
    assert record.state is lmtune.TrialState.PRUNED
    assert sorted(record.intermediate) == [0, 1, 2]
    assert epochs == [3]  # three epochs (0, 1, 2) ran, not six


def test_a_study_with_median_stopping_prunes_bad_learning_rates() -> None:
    study = lmtune.create_study(seed=1, scheduler=MedianStopping(min_resource=1, n_startup_trials=2))

    def objective(trial):
        trainer = fit(trial, [LmtuneCallback(trial, monitor="val_loss")])
        return trainer.callback_metrics["val_loss"].item()

    study.optimize(objective, n_trials=8)
    complete = [t for t in study.trials if t.state is lmtune.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state is lmtune.TrialState.PRUNED]
    assert complete and pruned
    assert all(len(t.intermediate) == MAX_EPOCHS for t in complete)
    assert all(len(t.intermediate) < MAX_EPOCHS for t in pruned)
    assert study.best_value < 0.5
    assert study.best_value == pytest.approx(min(t.value for t in complete))


def test_an_unlogged_metric_is_a_config_error_naming_the_logged_ones() -> None:
    study = lmtune.create_study(seed=0)
    errors = []

    def objective(trial):
        try:
            fit(trial, [LmtuneCallback(trial, monitor="val_acc")])
        except ConfigError as exc:
            errors.append(str(exc))
            raise
        return 0.0

    study.optimize(objective, n_trials=1)
    assert study.trials[0].state is lmtune.TrialState.FAILED
    assert "val_acc" in errors[0] and "val_loss" in errors[0]
    with pytest.raises(ConfigError, match="step"):
        LmtuneCallback(study.ask(), step="batch")
    assert issubclass(TrialPruned, lmtune.LmtuneError)
