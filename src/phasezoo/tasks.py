"""What the models of a zoo are trained to do: loss, score and error per modality.

Every stage (training, the metric columns, the Hessian, mode connectivity, CKA, the phases and
the downstream studies) goes through the zoo's :class:`Task`, so one set of columns means the same
thing in every zoo and differs only where the modality forces it:

* ``classification`` — cross-entropy on logits; the ``*_accuracy`` columns hold top-1 accuracy;
  error (%) = 100 · (1 − accuracy).
* ``language-modeling`` — next-token cross-entropy (nats per token) of a causal LM; the
  ``*_accuracy`` columns hold next-token top-1 accuracy; error as for classification.
* ``pinn-convection`` — the PINN loss of u_t + β u_x = 0 (mean squared residual + initial + periodic
  boundary terms); the ``*_accuracy`` columns hold the **relative L2 error** ‖u − u*‖ / ‖u*‖
  against the analytic solution (lower is better); error (%) = 100 · relative L2 error.

The phases label "high train loss" and mode connectivity on the error (%), so the thresholds in
a zoo's ``phases`` section are read on that scale.

A model whose loss is not finite on a split has no score there either: ``evaluate`` returns NaN
for both (argmax over NaN outputs would otherwise pass a diverged model off as chance-level).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from phasezoo.task_kinds import CLASSIFICATION, PINN_CONVECTION, task_kind

Forward = Callable[[torch.Tensor], torch.Tensor]

def _finite_or_nan(x: float) -> float:
    return x if math.isfinite(x) else float("nan")


def _loss_and_score(loss: float, score: float) -> tuple[float, float]:
    """``(loss, score)`` with both NaN when the loss is not finite.

    A model with NaN outputs still gets a score from argmax (index 0 of a NaN row: chance
    accuracy), and a diverged model must not pass for a chance-level one downstream (fine-tuning
    means, studies, mode-connectivity paths): its score is as undefined as its loss.
    """
    if not math.isfinite(loss):
        return math.nan, math.nan
    return loss, _finite_or_nan(score)


class Task:
    """Cross-entropy on the model's outputs: classification (labels ``(N,)``) or causal language
    modelling (next tokens ``(N, T)``, logits ``(N, T, V)``: every position is a sample)."""

    stackable = True  # the stacked trainer's fused cross-entropy applies

    def __init__(self, kind: str = CLASSIFICATION.name) -> None:
        if not task_kind(kind).categorical:
            raise ValueError(f"Task: kind must be one with categorical outputs (cross-entropy), "
                             f"got {kind}")
        self.kind = kind

    def loss(self, forward: Forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch, differentiable w.r.t. whatever ``forward`` closes over."""
        return self.criterion(forward(x), y)

    def criterion(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss on given outputs (PyHessian's ``criterion(outputs, targets)``)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int) -> tuple[float, float]:
        """Mean loss and score over ``(x, y)``; both NaN if the loss is not finite."""
        loss_sum, correct, count = 0.0, 0, 0
        for s in range(0, len(x), batch_size):
            logits = model(x[s:s + batch_size])
            logits = logits.reshape(-1, logits.shape[-1])
            target = y[s:s + batch_size].reshape(-1)
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(dim=1) == target).sum().item()
            count += len(target)
        return _loss_and_score(loss_sum / count, correct / count)

    @torch.no_grad()
    def representation(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Outputs as (samples × features) for CKA; an LM's positions are its samples."""
        out = torch.cat([model(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])
        return out.reshape(-1, out.shape[-1])


class ConvectionTask(Task):
    """PINN for u_t + β u_x = 0 on x ∈ [0, 2π), t ∈ [0, 1], u(x, 0) = sin x, periodic in x.

    Inputs are points ``(x, t)``; targets are ``(kind, u*)`` with kind 0 = interior collocation
    point (residual term), 1 = initial point (t = 0, fit u*), 2 = boundary point x = 0 (match
    u(0, t) = u(2π, t)); u* = sin(x − βt) is the analytic solution at every point, used for the
    initial term and for the relative L2 error only. The loss is the sum of the three terms' means
    (Krishnapriyan et al. 2021), each over the points of its kind.
    """

    stackable = False  # the loss differentiates the model w.r.t. its inputs
    PERIOD = 2 * math.pi

    def __init__(self, beta: float) -> None:
        self.kind = PINN_CONVECTION.name
        self.beta = float(beta)

    def _sums(self, forward: Forward, x: torch.Tensor, y: torch.Tensor,
              create_graph: bool) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor,
                                           torch.Tensor]:
        """Per-term sums of squares, the per-kind point counts (an int64 tensor [3]), and
        Σ(u − u*)² and Σu*² over the batch.

        One host sync per batch (the number of boundary points, to size their forward pass);
        the counts stay on the device, where reading them each step would stall a GPU's queue.
        """
        kind, u_star = y[:, 0].long(), y[:, 1]
        pts = x.detach().clone().requires_grad_(True)
        u = forward(pts)[:, 0]
        (du,) = torch.autograd.grad(u.sum(), pts, create_graph=create_graph)
        terms = [(du[:, 1] + self.beta * du[:, 0]) ** 2, (u - u_star) ** 2]
        bound = (kind == 2).nonzero().squeeze(1)
        gap = torch.zeros_like(u)
        if len(bound):
            shifted = (x.index_select(0, bound)
                       + torch.tensor([self.PERIOD, 0.0], dtype=x.dtype, device=x.device))
            gap = gap.index_put((bound,), u.index_select(0, bound) - forward(shifted)[:, 0])
        terms.append(gap ** 2)
        sums = [(t * (kind == k)).sum() for k, t in enumerate(terms)]
        counts = torch.stack([(kind == k).sum() for k in range(3)])
        return sums, counts, ((u - u_star) ** 2).sum().detach(), (u_star ** 2).sum()

    def loss(self, forward: Forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ over the kinds present in the batch of the kind's mean; a kind with no points adds
        an exact 0 (its mean is skipped, as if absent)."""
        sums, counts, _, _ = self._sums(forward, x, y, create_graph=True)
        return sum(torch.where(c > 0, s / c.clamp(min=1), 0.0)
                   for s, c in zip(sums, counts, strict=True))

    def criterion(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise TypeError("the PINN loss needs the model (its input derivatives), not its outputs; "
                        "use Task.loss(model, x, y)")

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int) -> tuple[float, float]:
        """PINN loss over the split's points and the relative L2 error there (both NaN if the
        loss is not finite)."""
        sums, counts, err, ref = [0.0] * 3, [0] * 3, 0.0, 0.0
        with torch.enable_grad():
            for s in range(0, len(x), batch_size):
                b_sums, b_counts, b_err, b_ref = self._sums(model, x[s:s + batch_size],
                                                            y[s:s + batch_size], create_graph=False)
                sums = [a + float(b.detach()) for a, b in zip(sums, b_sums, strict=True)]
                counts = [a + b for a, b in zip(counts, b_counts.tolist(), strict=True)]
                err, ref = err + float(b_err), ref + float(b_ref)
        loss = sum(s / c for s, c in zip(sums, counts, strict=True) if c)
        return _loss_and_score(loss, math.sqrt(err / ref) if ref > 0 else math.nan)

    @torch.no_grad()
    def representation(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The predicted solution u at the points, (points × 1): CKA is then the squared
        correlation of two seeds' solutions."""
        return torch.cat([model(x[s:s + batch_size]) for s in range(0, len(x), batch_size)])


def model_loss(loss_fn: Task | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               model: Forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch loss from a :class:`Task` or from a PyHessian-style ``criterion(outputs, targets)``."""
    if isinstance(loss_fn, Task):
        return loss_fn.loss(model, x, y)
    return loss_fn(model(x), y)
