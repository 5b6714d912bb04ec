"""Train a bag-of-words sentiment classifier on a slice of SST-2 and print the dev accuracy after each epoch.

An ordinary training script (numpy only, nothing of lmtune in it): its options come from the command line and
each epoch ends with one JSON line, which is all a study's `program:` section needs to tune it:

    python train.py --learning_rate 0.3 --hidden 64 --epochs 5
    {"step": 1, "loss": 0.61, "eval_accuracy": 0.71}
    ...

Data: see sst2_bow.py.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sst2_bow import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--hidden", type=int, default=64, help="hidden units; 0: logistic regression")
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train_examples", type=int, default=4000)
    parser.add_argument("--vocabulary", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x, train_labels), (x_dev, dev_labels) = load(args.train_examples, vocabulary_size=args.vocabulary)

    rng = np.random.default_rng(args.seed)
    sizes = [x.shape[1], *([args.hidden] if args.hidden else []), 2]
    weights = [
        rng.normal(0, (2 / m) ** 0.5, (m, n)).astype(np.float32)
        for m, n in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    biases = [np.zeros(n, dtype=np.float32) for n in sizes[1:]]

    def forward(inputs: np.ndarray) -> list[np.ndarray]:
        activations = [inputs]
        for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
            z = activations[-1] @ w + b
            activations.append(np.maximum(z, 0) if layer < len(weights) - 1 else z)
        return activations

    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), args.batch_size):
            batch = order[start : start + args.batch_size]
            activations = forward(x[batch])
            logits = activations[-1] - activations[-1].max(axis=1, keepdims=True)
            probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            labels = train_labels[batch]
            losses.append(-np.log(probabilities[np.arange(len(batch)), labels] + 1e-9).mean())
            grad = probabilities
            grad[np.arange(len(batch)), labels] -= 1
            grad /= len(batch)
            for layer in reversed(range(len(weights))):
                grad_w = activations[layer].T @ grad + args.l2 * weights[layer]
                grad_b = grad.sum(axis=0)
                if layer:
                    grad = (grad @ weights[layer].T) * (activations[layer] > 0)
                weights[layer] -= args.learning_rate * grad_w
                biases[layer] -= args.learning_rate * grad_b
        accuracy = float((forward(x_dev)[-1].argmax(axis=1) == dev_labels).mean())
        print(
            json.dumps(
                {"step": epoch, "loss": round(float(np.mean(losses)), 4), "eval_accuracy": round(accuracy, 4)}
            )
        )


if __name__ == "__main__":
    main()
