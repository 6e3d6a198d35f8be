"""Loss and accuracy of a model on a split: the one evaluation every stage shares.

The batch size is fixed per zoo (``train.eval_batch_size``) so that the same weights give the
same numbers in the train stage, the metrics stage and a user's ``load_model`` check.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (fraction in [0, 1]) in eval mode; restores the mode.

    A non-finite loss is returned as NaN, never raised, so a diverged model still has a row.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    try:
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size])
            target = y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(dim=1) == target).sum().item()
    finally:
        model.train(was_training)
    loss = loss_sum / len(x)
    return (loss if loss == loss and abs(loss) != float("inf") else float("nan")), correct / len(x)


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Model outputs on ``x`` in eval mode (restores the mode)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
