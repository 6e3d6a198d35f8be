"""Loss and score of a model on a split: the one evaluation every stage shares.

The batch size is fixed per zoo (``train.eval_batch_size``) so that the same weights give the
same numbers in the train stage, the metrics stage and a user's ``load_model`` check. What the
loss and the score are depends on the zoo's task (:mod:`phasezoo.tasks`); without one it is
classification (cross-entropy and top-1 accuracy).
"""

from __future__ import annotations

import torch
from torch import nn

from phasezoo.task_kinds import CLASSIFICATION as CLASSIFICATION_KIND
from phasezoo.tasks import Task

CLASSIFICATION = Task(CLASSIFICATION_KIND.name)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             task: Task | None = None) -> tuple[float, float]:
    """Mean loss and score (accuracy, or the task's score) in eval mode; restores the mode.

    A non-finite loss is returned as NaN, never raised, so a diverged model still has a row.
    """
    was_training = model.training
    model.eval()
    try:
        return (task or CLASSIFICATION).evaluate(model, x, y, batch_size)
    finally:
        model.train(was_training)


def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 1000,
              task: Task | None = None) -> torch.Tensor:
    """Model outputs on ``x`` in eval mode as (samples × features) (restores the mode)."""
    was_training = model.training
    model.eval()
    try:
        return (task or CLASSIFICATION).representation(model, x, batch_size)
    finally:
        model.train(was_training)
