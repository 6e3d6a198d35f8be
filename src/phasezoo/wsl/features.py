"""Feature extractors: a :class:`~phasezoo.wsl.table.ZooTable` → a matrix, one row per checkpoint.

Every weight-based extractor is invariant to permuting a layer's hidden units (the symmetry
that makes raw weights hard to learn from), except :func:`raw_weights`, the baseline that shows
why that matters; ``tests/test_wsl.py`` checks it for each one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from phasezoo.wsl.row_statistics import (ORDER_STATISTICS, QUINTILES, row_statistics,
                                         stack_statistics)
from phasezoo.wsl.table import ZooTable

Extractor = Callable[[ZooTable, str], np.ndarray]
# Per-layer lists that describe how a metric was measured, not the weights: FARMS's window size
# follows the layer's shape alone, so as a feature it would only repeat the width.
NOT_HTSR_FEATURES = frozenset({"layer_farms_window_evals"})


def hyperparameters(table: ZooTable, target: str) -> np.ndarray:
    """log2 temperature, log2 load and epoch: the bar every weight-based method must beat.

    The column being predicted (temperature or load) is left out, or the task would be trivial.
    """
    cols = {"temperature_value": np.log2(table.meta["temperature_value"].to_numpy(float)),
            "load_value": np.log2(table.meta["load_value"].to_numpy(float)),
            "epoch": table.meta["epoch"].to_numpy(float)}
    return np.stack([v for k, v in cols.items() if k != target], axis=1)


def layer_statistics(table: ZooTable, target: str = "",
                     percentiles: tuple[float, ...] = ORDER_STATISTICS) -> np.ndarray:
    """Per trainable tensor: the given percentiles of its values, their mean and variance.

    Raises:
        ValueError: if the rows do not all have the same number of trainable tensors (zoos of
            different architectures cannot share these features), or a streamed table has
            neither the statistics nor the weights (the message says why).
    """
    if tuple(percentiles) in table.statistics:
        return table.statistics[tuple(percentiles)]
    if table.statistics_error:
        raise ValueError(table.statistics_error)
    if table.weights is None:
        raise ValueError(f"layer statistics: no weights and no streamed statistics ({table.note})")
    return stack_statistics([row_statistics(w, layout, percentiles)
                             for w, layout in zip(table.weights, table.layouts, strict=True)],
                            percentiles)


def unterthiner_statistics(table: ZooTable, target: str = "") -> np.ndarray:
    """Unterthiner et al. (2020)'s statistics: per trainable tensor, percentiles 0/25/50/75/100,
    mean and standard deviation (:func:`layer_statistics` with the variance's square root)."""
    x = layer_statistics(table, target, ORDER_STATISTICS).copy()
    per_tensor = len(ORDER_STATISTICS) + 2
    x[:, per_tensor - 1::per_tensor] = np.sqrt(x[:, per_tensor - 1::per_tensor])
    return x


def layer_quintiles(table: ZooTable, target: str = "") -> np.ndarray:
    """LayerQuintiles: percentiles 1/25/50/75/99, mean and variance of every trainable tensor."""
    return layer_statistics(table, target, QUINTILES)


def htsr_features(table: ZooTable, target: str = "") -> np.ndarray:
    """Per layer: α, FARMS α, weighted α, stable rank, log spectral and Frobenius norms, from the
    zoo's ``layer_*`` lists (NaN where a layer is too small to analyse; gradient boosting takes
    NaN as missing).

    Raises:
        ValueError: if the zoo has no per-layer HT-SR columns.
    """
    if not table.layer_columns:
        raise ValueError("HT-SR features: the zoo has no layer_* columns (published before "
                         "phasezoo 0.1's HT-SR metrics?)")
    cols = [np.stack(table.layer_columns[c]) for c in sorted(table.layer_columns)
            if c not in NOT_HTSR_FEATURES]
    return np.concatenate(cols, axis=1)


def raw_weights(table: ZooTable, target: str = "") -> np.ndarray:
    """The flattened weights themselves (rows must have one length: a fixed-architecture subset).

    Raises:
        ValueError: if the rows differ in length.
    """
    if table.weights is None:
        raise ValueError(table.note or "raw weights were not loaded")
    lengths = {len(w) for w in table.weights}
    if len(lengths) > 1:
        raise ValueError(f"raw weights need one architecture; lengths {sorted(lengths)}")
    return np.stack(table.weights).astype(np.float64)


EXTRACTORS: dict[str, Extractor] = {
    "hyperparameters": hyperparameters,
    "layer_quintiles": layer_quintiles,
    "layer_statistics": layer_statistics,
    "unterthiner_statistics": unterthiner_statistics,
    "htsr": htsr_features,
    "raw_weights": raw_weights,
}
