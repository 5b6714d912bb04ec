"""A Keras Tuner hypermodel of a bag-of-words sentiment classifier, written for Keras Tuner and left as it is.

`build_model(hp)` uses every kind of Keras Tuner hyperparameter: Int, Float on a log scale, Choice, Boolean,
Fixed and a conditional scope. keras_tune.py tunes it with lmtune; benchmarks/keras_search.py with both.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402 - the backend is chosen before Keras loads

VOCABULARY = 2000


def build_model(hp) -> keras.Model:
    model = keras.Sequential([keras.Input((VOCABULARY,))])
    if hp.Boolean("hidden_layer"):
        with hp.conditional_scope("hidden_layer", [True]):
            model.add(
                keras.layers.Dense(
                    hp.Int("units", 16, 128, step=16), activation=hp.Fixed("activation", "relu")
                )
            )
            model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
    model.add(keras.layers.Dense(2, activation="softmax"))
    learning_rate = hp.Float("learning_rate", 1e-4, 3e-1, sampling="log")
    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[
        hp.Choice("optimizer", ["adam", "sgd"])
    ]
    model.compile(
        optimizer=optimizer(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
