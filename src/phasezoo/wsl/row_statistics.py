"""Per-layer statistics of one zoo row's weights: per trainable tensor, chosen percentiles of its
values, their mean and variance, stacked into a matrix over rows.

Why apart from :mod:`phasezoo.wsl.features`: a streamed :class:`~phasezoo.wsl.table.ZooTable`
computes them row by row while it reads the zoo, and the feature extractors read them off the
table, which the extractors import: the table reads these here, not from the extractors
(that was an import circle).
"""

from __future__ import annotations

import math

import numpy as np

QUINTILES = (1, 25, 50, 75, 99)  # LayerQuintiles (Unterthiner et al. 2020's percentile features)
ORDER_STATISTICS = (0, 25, 50, 75, 100)  # their per-layer statistics: min, quartiles, max
PERCENTILE_SETS = (QUINTILES, ORDER_STATISTICS)  # what a streamed table precomputes


def _parameter_slices(layout: dict) -> list[slice]:
    """Where each trainable tensor (weights and biases, not BatchNorm statistics) is in the row."""
    return [slice(e["offset"], e["offset"] + math.prod(e["shape"]))
            for e in layout["entries"] if e.get("kind", "parameter") == "parameter"]


def stack_statistics(rows: list[list[float]], percentiles: tuple[float, ...]) -> np.ndarray:
    """The rows of :func:`row_statistics` as one matrix.

    Raises:
        ValueError: if the rows come from architectures with different numbers of trainable
            tensors (the message lists the counts), as a zoo with a depth axis would.
    """
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        per_tensor = len(percentiles) + 2
        counts = sorted(n // per_tensor for n in lengths)
        raise ValueError(f"layer statistics: the zoo mixes architectures (trainable tensors per "
                         f"model: {counts}); per-layer features need one layer count")
    return np.asarray(rows, dtype=np.float64)


def row_statistics(w: np.ndarray, layout: dict, percentiles: tuple[float, ...]) -> list[float]:
    """One row's features: per trainable tensor, the percentiles, mean and variance."""
    feats: list[float] = []
    for s in _parameter_slices(layout):
        v = w[s].astype(np.float64)
        feats += [*np.percentile(v, percentiles), v.mean(), v.var()]
    return feats
