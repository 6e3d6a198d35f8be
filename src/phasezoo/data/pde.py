"""PDE problems for physics-informed networks: the 1-D convection equation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from phasezoo.data.registry import facts_of, register_dataset
from phasezoo.data.split import DATA_FRACTION_SEED, Split
from phasezoo.tasks import ConvectionTask

@register_dataset
def convection(root: Path, *, beta: float = 1.0, n_residual: int = 1000, n_initial: int = 256,
               n_boundary: int = 100, grid_x: int = 256, grid_t: int = 100) -> Split:
    """The 1-D convection problem u_t + β u_x = 0, u(x, 0) = sin x, periodic on x ∈ [0, 2π),
    t ∈ [0, 1] (Krishnapriyan et al. 2021); analytic solution u = sin(x − βt).

    Train: ``n_residual`` uniform random interior points, ``n_initial`` evenly spaced points at
    t = 0 and ``n_boundary`` at x = 0 (drawn with a fixed seed: the points belong to the cell, not
    to the model seed). Test: the ``grid_x`` × ``grid_t`` evaluation grid, its t = 0 row as initial
    points and x = 0 column as boundary points. Targets are ``(kind, u*)`` (see
    :class:`phasezoo.tasks.ConvectionTask`).
    """
    gen = torch.Generator().manual_seed(DATA_FRACTION_SEED)
    two_pi = 2 * np.pi
    interior = torch.rand(n_residual, 2, generator=gen, dtype=torch.float64) * torch.tensor(
        [two_pi, 1.0], dtype=torch.float64)
    initial = torch.stack([torch.arange(n_initial) * two_pi / n_initial,
                           torch.zeros(n_initial)], dim=1).double()
    boundary = torch.stack([torch.zeros(n_boundary),
                            torch.linspace(0, 1, n_boundary + 1)[1:]], dim=1).double()
    x_train = torch.cat([interior, initial, boundary])
    k_train = torch.cat([torch.zeros(n_residual), torch.ones(n_initial), torch.full((n_boundary,), 2.0)])
    gx, gt = torch.meshgrid(torch.arange(grid_x) * two_pi / grid_x,
                            torch.linspace(0, 1, grid_t), indexing="ij")
    x_test = torch.stack([gx.reshape(-1), gt.reshape(-1)], dim=1).double()
    k_test = torch.where(x_test[:, 1] == 0, 1.0, torch.where(x_test[:, 0] == 0, 2.0, 0.0))

    def targets(x: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
        return torch.stack([kind.double(), torch.sin(x[:, 0] - beta * x[:, 1])], dim=1).float()

    info = {"source": "generated collocation points", "beta": float(beta),
            "solution": "u = sin(x - beta t)", "points": {"residual": n_residual,
                                                         "initial": n_initial,
                                                         "boundary": n_boundary},
            "test_grid": [grid_x, grid_t]}
    return Split(x_train.float(), targets(x_train, k_train), x_test.float(),
                 targets(x_test, k_test), facts_of(convection).classes, info, ConvectionTask(beta))
