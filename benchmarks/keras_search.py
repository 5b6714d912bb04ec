"""Keras Tuner's RandomSearch against lmtune on the same unchanged Keras Tuner hypermodel.

The hypermodel is examples/sst2-bow/keras_hypermodel.py (a bag-of-words SST-2 classifier; Keras 3 on PyTorch),
trained on the first ``--train`` training sentences and validated on the GLUE dev set (872 sentences). Per seed,
Keras Tuner's ``RandomSearch`` runs ``--trials`` trials of ``--epochs`` epochs each; lmtune's ``search`` runs as
many trials with its default sampler and ASHA over the epochs (rungs 1, 3, 9). The score of each is its best trial's
best-epoch validation accuracy (Keras Tuner's own score); the cost is the epochs trained, all trials together.
Prints a table per seed and the means, with the ratios lmtune / Keras Tuner.

    .venv/bin/python benchmarks/keras_search.py                      # 2 seeds, 8 trials, 9 epochs
    .venv/bin/python benchmarks/keras_search.py --seeds 0 --trials 4 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples" / "sst2-bow"))

import keras_hypermodel  # noqa: E402
import sst2_bow  # noqa: E402

from lmtune.integrations.keras import search  # noqa: E402


class CountEpochs(keras.callbacks.Callback):
    """Counts the epochs Keras Tuner trains, over all its trials (in the class: Keras Tuner copies callbacks)."""

    epochs = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        CountEpochs.epochs += 1


def run_keras_tuner(seed: int, trials: int, epochs: int, batch_size: int, data: tuple) -> dict:
    (x, y), validation = data
    keras.utils.set_random_seed(seed)
    CountEpochs.epochs = 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        tuner = keras_tuner.RandomSearch(
            keras_hypermodel.build_model,
            objective="val_accuracy",
            max_trials=trials,
            seed=seed,
            directory=folder,
            project_name="sst2",
        )
        tuner.search(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation,
            callbacks=[CountEpochs()],
            verbose=0,
        )
        score = tuner.oracle.get_best_trials(1)[0].score
    return {"score": score, "epochs": CountEpochs.epochs, "seconds": time.monotonic() - began}


def run_lmtune(seed: int, trials: int, epochs: int, batch_size: int, data: tuple) -> dict:
    (x, y), validation = data
    began = time.monotonic()
    study = search(
        keras_hypermodel.build_model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        objective="val_accuracy",
        n_trials=trials,
        seed=seed,
    )
    spent = sum(record.user_attrs.get("epochs", 0) for record in study.trials)
    return {"score": study.best_value, "epochs": spent, "seconds": time.monotonic() - began}


def table(rows: list[tuple[str, dict, dict]]) -> str:
    lines = [
        "| seed | Keras Tuner score | lmtune score | Keras Tuner epochs | lmtune epochs | epochs ratio | "
        "Keras Tuner s | lmtune s | time ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, peer, ours in rows:
        lines.append(
            f"| {label} | {peer['score']:.4f} | {ours['score']:.4f} | {peer['epochs']:.1f} | {ours['epochs']:.1f} | "
            f"{ours['epochs'] / peer['epochs']:.2f} | {peer['seconds']:.0f} | {ours['seconds']:.0f} | "
            f"{ours['seconds'] / peer['seconds']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--train", type=int, default=2000, help="training sentences")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = sst2_bow.load(train_examples=args.train, vocabulary_size=keras_hypermodel.VOCABULARY)
    print(
        f"# Keras Tuner {version('keras-tuner')} RandomSearch vs lmtune search (auto sampler + ASHA); Keras "
        f"{keras.__version__} on torch {torch.__version__}, {args.threads} thread(s); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; {args.trials} trials x {args.epochs} epochs, {args.train} training sentences, "
        f"batch {args.batch_size}; load before: {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for seed in args.seeds:
        peer = run_keras_tuner(seed, args.trials, args.epochs, args.batch_size, data)
        ours = run_lmtune(seed, args.trials, args.epochs, args.batch_size, data)
        rows.append((str(seed), peer, ours))
        print(table(rows[-1:]), flush=True)
    mean = {
        side: {key: statistics.mean(row[i][key] for row in rows) for key in ("score", "epochs", "seconds")}
        for i, side in ((1, "peer"), (2, "ours"))
    }
    rows.append(("mean", mean["peer"], mean["ours"]))
    print()
    print(table(rows))
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
