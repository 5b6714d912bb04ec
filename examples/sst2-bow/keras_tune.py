"""Tune the Keras Tuner hypermodel of keras_hypermodel.py with lmtune: its default sampler and ASHA over 9 epochs.

    python examples/sst2-bow/keras_tune.py

Where Keras Tuner's script said `tuner = kt.RandomSearch(build_model, objective="val_accuracy", max_trials=12)`
and `tuner.search(x, y, epochs=9, batch_size=128, validation_data=(x_val, y_val))`, this says
`search(build_model, x, y, ...)`.

Measured (2 CPU cores shared with other work, load average 20 to 29): best val_accuracy 0.7328 after 76 of the
108 epochs 12 full trials would take; 18 min 46 s of wall time (the search 1049 s of it) for 2 min 20 s of CPU
time. benchmarks/keras_search.py compares it with Keras Tuner's RandomSearch (docs/benchmarks.md).
"""

from __future__ import annotations

import time

from keras_hypermodel import VOCABULARY, build_model
from sst2_bow import load

from lmtune.integrations.keras import best_hyperparameters, search


def main() -> None:
    (x, y), (x_val, y_val) = load(train_examples=2000, vocabulary_size=VOCABULARY)
    began = time.monotonic()
    study = search(
        build_model, x, y, epochs=9, batch_size=128, validation_data=(x_val, y_val),
        objective="val_accuracy", n_trials=12, seed=0,
    )  # fmt: skip
    epochs = sum(trial.user_attrs.get("epochs", 0) for trial in study.trials)
    print(
        f"best val_accuracy {study.best_value:.4f} after {epochs} epochs in {time.monotonic() - began:.0f} s"
    )
    print("best hyperparameters:", study.best_params)
    model = build_model(best_hyperparameters(study))  # the best configuration, built again to train for good
    model.summary()


if __name__ == "__main__":
    main()
