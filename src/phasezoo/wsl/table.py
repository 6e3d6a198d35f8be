"""A zoo as the benchmark sees it: one row of metadata per checkpoint plus its weights and layout."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

META_COLUMNS = ("model_id", "zoo", "cell", "seed", "epoch", "temperature_name", "temperature_value",
                "load_name", "load_value", "train_accuracy", "test_accuracy", "phase", "diverged")
HP_PREFIX = "hp_"  # the cell's hyperparameters, kept when present: the studies rebuild the data


@dataclass
class ZooTable:
    """Live (not diverged) checkpoints of a zoo: ``meta`` rows, ``weights[i]``, ``layouts[i]``,
    and the per-layer HT-SR lists (``layer_*`` columns) when the zoo has them."""

    meta: pd.DataFrame
    weights: list[np.ndarray]
    layouts: list[dict]
    layer_columns: dict[str, list[np.ndarray]]

    def __len__(self) -> int:
        return len(self.meta)


def load_zoo(path_or_id: str, split: str = "train") -> ZooTable:
    """Read a zoo with ``datasets.load_dataset`` (a local folder or a hub id), diverged rows dropped.

    Raises:
        ValueError: if a column the benchmark needs is missing (the message names it).
    """
    import datasets

    ds = datasets.load_dataset(path_or_id, split=split).with_format("numpy")
    missing = [c for c in (*META_COLUMNS, "weights", "layout") if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path_or_id}: not a phasezoo zoo, column '{missing[0]}' is missing")
    meta = pd.DataFrame({c: ds[c] for c in ds.column_names
                         if c in META_COLUMNS or c.startswith(HP_PREFIX)})
    for c in ("model_id", "zoo", "cell", "temperature_name", "load_name", "phase"):
        meta[c] = meta[c].astype(str)
    keep = ~meta["diverged"].to_numpy(dtype=bool)
    rows = np.flatnonzero(keep)
    layer_cols = [c for c in ds.column_names if c.startswith("layer_")]
    weights = ds["weights"]
    layouts = ds["layout"]
    return ZooTable(
        meta=meta[keep].reset_index(drop=True),
        weights=[np.asarray(weights[i], dtype=np.float32) for i in rows],
        layouts=[json.loads(str(layouts[i])) for i in rows],
        layer_columns={c: [np.asarray(ds[c][i], dtype=np.float64) for i in rows]
                       for c in layer_cols},
    )


def concat(tables: list[ZooTable]) -> ZooTable:
    """Several zoos as one table (for zoo transfer); their ``layer_*`` columns must agree."""
    keys = set(tables[0].layer_columns)
    if any(set(t.layer_columns) != keys for t in tables):
        raise ValueError("zoos differ in their per-layer HT-SR columns")
    return ZooTable(pd.concat([t.meta for t in tables], ignore_index=True),
                    [w for t in tables for w in t.weights],
                    [lay for t in tables for lay in t.layouts],
                    {k: [v for t in tables for v in t.layer_columns[k]] for k in keys})
