"""The PINN failure mode that the pinn-convection zoo's β axis spans, in one minute on a CPU.

Trains phasezoo's PINN MLP (4 × 50, tanh) on the convection problem u_t + β u_x = 0 with SGD
(momentum 0.9, batches of 128 collocation points, 400 epochs: phasezoo's loss and data, a plain
loop) at β = 1 and β = 20 for three learning rates, and prints the relative L2 error against the
analytic solution on the 256 × 100 grid. Expected: small at β = 1, ~1 at β = 20 whatever the
learning rate (Krishnapriyan et al. 2021).

    python examples/pinn_failure_mode.py [--epochs 400]
"""

from __future__ import annotations

import argparse

import torch

from phasezoo.data import create_dataset
from phasezoo.evaluation import evaluate
from phasezoo.models import create_model
from phasezoo.optim import SGD
from phasezoo.runtime import generator, seeded


def relative_error(beta: float, lr: float, epochs: int) -> float:
    split = create_dataset("convection", options={"beta": beta})
    with seeded(0):
        model = create_model("pinn-mlp", width=50, depth=4, input_shape=(2,), num_classes=1)
    opt, gen = SGD(model.parameters(), momentum=0.9), generator(0)
    for _ in range(epochs):
        order = torch.randperm(len(split.x_train), generator=gen)
        for s in range(0, len(order), 128):
            idx = order[s:s + 128]
            opt.zero_grad()
            split.task.loss(model, split.x_train[idx], split.y_train[idx]).backward()
            opt.step(lr)
    return evaluate(model, split.x_test, split.y_test, 4096, split.task)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("beta  lr     relative L2 error")
    for beta in (1.0, 20.0):
        for lr in (0.001, 0.01, 0.03):
            print(f"{beta:<5g} {lr:<6g} {relative_error(beta, lr, args.epochs):.3f}", flush=True)


if __name__ == "__main__":
    main()
