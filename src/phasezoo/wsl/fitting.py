"""The training loop the learned baselines share (``nfn``, ``neuron_sets``): targets encoded for
a network and decoded back, Adam over shuffled batches, and the epoch with the best validation
score kept.

Why one loop: the benchmark compares learned methods with each other and with the statistics
baselines, so they must be trained and selected the same way (same splits, same validation
score, same seeded batch order); only how a batch of rows becomes a network input differs, and
that is the one function each method passes in.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from phasezoo.runtime import generator

# Row indices → the network's input for those rows (a method's own batch format).
MakeBatch = Callable[[list[int]], object]


class Targets:
    """A task's targets as a network learns them: class indices (classification, the classes
    sorted) or standardized floats (regression), and predictions decoded back to labels or the
    target's own scale."""

    def __init__(self, y: np.ndarray, kind: str) -> None:
        self.kind = kind
        if kind == "classification":
            self.classes = np.unique(y)
            self.encoded = torch.as_tensor(np.searchsorted(self.classes, y))
        else:
            self.mean, self.std = float(np.mean(y)), float(np.std(y)) or 1.0
            self.encoded = torch.as_tensor((y - self.mean) / self.std, dtype=torch.float32)

    @property
    def outputs(self) -> int:
        """The network's output size: one logit per class, or one number."""
        return len(self.classes) if self.kind == "classification" else 1

    def loss(self, out: torch.Tensor, index: list[int]) -> torch.Tensor:
        """Cross-entropy or mean squared error of the network's outputs for rows ``index``."""
        if self.kind == "classification":
            return nn.functional.cross_entropy(out, self.encoded[index])
        return nn.functional.mse_loss(out[:, 0], self.encoded[index])

    def decode(self, out: torch.Tensor) -> np.ndarray:
        """Network outputs as predictions: class labels, or values on the target's scale."""
        if self.kind == "classification":
            return self.classes[out.argmax(1).numpy()]
        return out[:, 0].numpy() * self.std + self.mean

    def score(self, pred: np.ndarray, y: np.ndarray) -> float:
        """Higher is better: accuracy, or minus the mean squared error."""
        if self.kind == "classification":
            return float(np.mean(pred == y))
        return -float(np.mean((pred - y) ** 2))


def predict_batches(net: nn.Module, make_batch: MakeBatch, groups: list[list[int]], rows: int,
                    targets: Targets) -> np.ndarray:
    """Predictions for ``rows`` rows, batched by ``groups`` (row indices that may share a batch:
    the ``nfn`` needs one architecture per batch), in eval mode without gradients."""
    net.eval()
    out = np.empty(rows, dtype=object if targets.kind == "classification" else float)
    with torch.no_grad():
        for idx in groups:
            out[idx] = targets.decode(net(make_batch(idx)))
    return out


def fit_best_epoch(net: nn.Module, make_batch: MakeBatch, groups: list[list[int]],
                   targets: Targets, validate: Callable[[], np.ndarray], y_val: np.ndarray, *,
                   epochs: int, lr: float, batch_size: int, seed: int) -> float:
    """Train ``net`` with Adam for ``epochs`` epochs and load the weights of the epoch whose
    validation predictions (``validate()``) score best; that score is returned.

    Each epoch cuts every group into batches of ``batch_size`` rows, visits the batches in a
    random order and each batch's rows in a random order, both drawn from one generator seeded
    by ``seed``: the same seed gives the same network.
    """
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = generator(seed)
    best, best_state = -np.inf, None
    for _ in range(epochs):
        batches = [g[j:j + batch_size] for g in groups for j in range(0, len(g), batch_size)]
        net.train()
        for b in torch.randperm(len(batches), generator=gen).tolist():
            idx = [batches[b][i] for i in torch.randperm(len(batches[b]), generator=gen).tolist()]
            loss = targets.loss(net(make_batch(idx)), idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = targets.score(validate(), y_val)
        if score > best or best_state is None:
            best, best_state = score, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return best
