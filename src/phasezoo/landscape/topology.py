"""Topological landscape profiles (Geniesse et al., "Visualizing loss functions as topological
landscape profiles"; their ``landscaper`` package): the loss on a plane spanned by the top two
Hessian eigenvectors, and the 0-dimensional persistence of that grid.

How it follows ``landscaper`` 1.3.1 (``docs/landscape-profile-protocol.md``) and where not:

* Directions: the top Hessian eigenvectors (landscaper: PyHessian's power iteration, unseeded);
  here the Ritz vectors of phasezoo's seeded Lanczos (:func:`hessian_top_eigenvectors`), kept
  orthonormal. landscaper then rescales each parameter tensor's block of a direction to norm
  √numel, which breaks both the eigenvector property and orthogonality; here each axis is the
  unit eigenvector times the step, so the plane is the one the eigenvectors span.
* Grid: ``steps`` points per axis over ±``radius``·‖θ‖ (landscaper: 41 steps, ±0.01·‖θ‖), the
  loss of the model (eval mode) on fixed batches at each point; non-finite losses become the
  largest finite one (landscaper: NaN → the mean, with unseeded noise on the maxima).
* Topology: 0-dimensional persistence of the grid as a cubical complex on its vertices
  (``gudhi.CubicalComplex(vertices=…)``, 4-connected), which equals the merge tree landscaper
  builds with topopy on the grid's Gabriel graph (checked in the note on random grids): each
  minimum is born at its value and dies at the saddle where it merges into a deeper basin.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import nn

from phasezoo.landscape.hessian import LossFn, hessian_top_eigenvectors
from phasezoo.tasks import model_loss

__all__ = ["flat_params", "hessian_plane", "loss_plane"]


def flat_params(model: nn.Module) -> torch.Tensor:
    """The trainable parameters as one vector (the order :class:`HessianOperator` uses)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


@torch.no_grad()
def _set_params(model: nn.Module, flat: torch.Tensor) -> None:
    i = 0
    for p in model.parameters():
        if p.requires_grad:
            p.copy_(flat[i:i + p.numel()].view_as(p))
            i += p.numel()


def loss_plane(model: nn.Module, loss_fn: LossFn,
               batches: list[tuple[torch.Tensor, torch.Tensor]], directions: torch.Tensor,
               steps: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The mean loss over ``batches`` at θ + a·d₀ + b·d₁ for a, b on ``steps`` evenly spaced
    values in ±``radius``·‖θ‖ (``directions``: two unit rows), as ``(grid[a, b], offsets)``.
    The model is evaluated in eval mode and its weights are restored afterwards."""
    if directions.shape[0] != 2 or steps < 3:
        raise ValueError(f"loss_plane: need 2 directions and ≥ 3 steps, got "
                         f"{directions.shape[0]} and {steps}")
    theta = flat_params(model)
    offsets = np.linspace(-radius, radius, steps) * float(torch.linalg.vector_norm(theta))
    total = sum(len(x) for x, _ in batches)
    grid = np.empty((steps, steps))
    was_training = model.training
    model.eval()
    try:
        for i, a in enumerate(offsets):
            for j, b in enumerate(offsets):
                _set_params(model, theta + a * directions[0] + b * directions[1])
                grid[i, j] = _summed_loss(model, loss_fn, batches) / total
    finally:
        _set_params(model, theta)
        model.train(was_training)
    finite = np.isfinite(grid)
    if not finite.any():
        raise ValueError("loss_plane: the loss is not finite anywhere on the plane")
    return np.where(finite, grid, grid[finite].max()), offsets


def _summed_loss(model: nn.Module, loss_fn: LossFn,
               batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Σ batch loss × batch size, without a graph, except for a task whose loss differentiates
    the model with respect to its inputs (the PINN's: ``Task.stackable`` is False), which
    needs autograd on to be computed at all."""
    needs_grad = not getattr(loss_fn, "stackable", True)
    with torch.enable_grad() if needs_grad else torch.no_grad():
        return sum(float(model_loss(loss_fn, model, x, y).detach()) * len(x) for x, y in batches)


def hessian_plane(model: nn.Module, loss_fn: LossFn,
                  batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int = 21,
                  radius: float = 0.01, max_iter: int = 40,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`loss_plane` on the plane of the two top Hessian eigenvectors:
    ``(grid, offsets, eigenvalues)``."""
    batches = list(batches)
    values, vectors = hessian_top_eigenvectors(model, loss_fn, batches, 2, max_iter=max_iter,
                                               seed=seed)
    grid, offsets = loss_plane(model, loss_fn, batches, vectors, steps, radius)
    return grid, offsets, values
