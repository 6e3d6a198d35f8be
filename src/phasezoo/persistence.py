"""0-dimensional persistence of a grid of loss values, and the summary columns of a topological
landscape profile (:mod:`phasezoo.landscape.topology` computes the grid).

Kept apart from the landscape package, which imports torch: the phases stage draws the profiles
from stored grids, and a light stage should not pay torch's import (seconds per job).
"""

from __future__ import annotations

import numpy as np


def persistence_pairs(grid: np.ndarray) -> np.ndarray:
    """0-dimensional persistence pairs ``(birth, death)`` of a grid of values, one per local
    minimum, deepest first (its death is ``inf``)."""
    import gudhi

    cc = gudhi.CubicalComplex(vertices=np.asarray(grid, dtype=float))
    cc.compute_persistence()
    pairs = np.asarray(cc.persistence_intervals_in_dimension(0), dtype=float).reshape(-1, 2)
    return pairs[np.argsort(pairs[:, 0], kind="stable")]


def profile_summary(grid: np.ndarray) -> dict[str, float]:
    """Summary columns of a landscape: its minima, their total and largest persistence (finite
    pairs: death − birth), the mean saddle–minimum gap of the non-global minima (the 0-D pairs'
    persistence; landscaper's SMAD also averages the global minimum's gap to its contour-tree
    neighbour), and the loss range."""
    pairs = persistence_pairs(grid)
    finite = pairs[np.isfinite(pairs[:, 1])]
    gaps = finite[:, 1] - finite[:, 0]
    return {"topo_minima": float(len(pairs)), "topo_total_persistence": float(gaps.sum()),
            "topo_max_persistence": float(gaps.max()) if len(gaps) else 0.0,
            "topo_mean_gap": float(gaps.mean()) if len(gaps) else 0.0,
            "topo_loss_min": float(np.min(grid)),
            "topo_loss_range": float(np.max(grid) - np.min(grid))}
