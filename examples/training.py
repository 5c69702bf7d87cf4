"""Train several small numpy models at once, one per process worker.

A hyper-parameter search: the same two-layer network trained with four learning
rates, each run a task. numpy spends most of the time in BLAS matrix products,
which release the GIL and may start threads of their own: unirun's process
workers limit each worker's BLAS threads (``OMP_NUM_THREADS`` and its kin) so
that N workers do not each start a thread per core and fight over the CPUs.

    pip install numpy   # or: pip install "unirun[examples]"
    python examples/training.py [process|thread|auto]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Literal, cast

import numpy as np

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


def train(learning_rate: float, steps: int = 50, seed: int = 0) -> tuple[float, str]:
    """Fit y = f(x) with one hidden layer by full-batch gradient descent.

    The data is made from ``seed`` inside the task, so nothing large travels to
    the worker. Returns the final mean squared error and the worker's BLAS
    thread setting.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1_000, 32))
    y = np.tanh(x @ rng.standard_normal((32, 1)))
    w1 = rng.standard_normal((32, 64)) * 0.1
    w2 = rng.standard_normal((64, 1)) * 0.1
    for _ in range(steps):
        hidden = np.maximum(x @ w1, 0.0)  # ReLU
        error = hidden @ w2 - y
        grad_w2 = hidden.T @ error / len(x)
        grad_w1 = x.T @ ((error @ w2.T) * (hidden > 0)) / len(x)
        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
    loss = float(np.mean((np.maximum(x @ w1, 0.0) @ w2 - y) ** 2))
    return loss, os.environ.get("OMP_NUM_THREADS", "not set")


def main(kind: Kind) -> None:
    rates = [0.01, 0.03, 0.1, 0.2]
    start = time.perf_counter()
    with unirun.executor(kind) as ex:
        results = list(ex.map(train, rates))
    elapsed = time.perf_counter() - start
    for rate, (loss, _) in zip(rates, results, strict=True):
        print(f"learning rate {rate:<5} loss {loss:.4f}")
    print(f"OMP_NUM_THREADS in the workers: {sorted({b for _, b in results})}")
    best = min(zip(rates, results, strict=True), key=lambda pair: pair[1][0])
    print(f"best learning rate: {best[0]}")
    print(f"{kind}: {len(rates)} models in {elapsed:.2f} s, start-up included")


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "process"))
