"""A zoo as the benchmark sees it: one row of metadata per checkpoint plus its weights and layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from phasezoo.splits import SPLITS_FILE, ZooSplits, computed_splits, read_splits
from phasezoo.weights import num_values, parse_layout
from phasezoo.wsl.row_statistics import PERCENTILE_SETS, row_statistics, stack_statistics

META_COLUMNS = ("model_id", "zoo", "cell", "seed", "epoch", "temperature_name", "temperature_value",
                "load_name", "load_value", "train_accuracy", "test_accuracy", "phase", "diverged")
HP_PREFIX = "hp_"  # the cell's hyperparameters, kept when present: the studies rebuild the data



@dataclass
class ZooTable:
    """Live (not diverged) checkpoints of a zoo: ``meta`` rows, ``weights[i]``, ``layouts[i]``,
    and the per-layer HT-SR lists (``layer_*`` columns) when the zoo has them.

    A streamed table (:func:`load_zoo` with ``stream=True``) carries the per-layer statistics
    already computed (``statistics``, by percentile set) and ``weights`` only if they fit the raw
    budget; otherwise ``weights`` is None and ``note`` says why. Statistics that could not be
    stacked (rows of different layer counts) are absent and ``statistics_error`` says so.
    """

    meta: pd.DataFrame
    weights: list[np.ndarray] | None
    layouts: list[dict]
    layer_columns: dict[str, list[np.ndarray]]
    statistics: dict[tuple[float, ...], np.ndarray] = field(default_factory=dict)
    note: str = ""
    statistics_error: str = ""
    # Live row index → its weights, read from the zoo when called (None for a concatenation).
    reader: Callable[[int], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.meta)


def load_zoo(path_or_id: str, split: str = "train", stream: bool = False,
             raw_max_mb: float = 1024.0, weights: bool = True) -> ZooTable:
    """Read a zoo with ``datasets.load_dataset`` (a local folder or a hub id), diverged rows dropped.

    Rows whose train or test score is NaN are dropped with them: the score is NaN exactly when
    the model's loss is not finite there (:meth:`phasezoo.tasks.Task.evaluate`), so such a
    checkpoint has no target to predict and no working model to study.

    ``stream``: read the weights one row at a time from the memory-mapped cache, computing every
    row's per-layer statistics on the way, and keep the raw weights only while they total at
    most ``raw_max_mb`` — for zoos whose weights do not fit in memory. Peak memory: one row and
    its largest tensor in float64, plus what is kept. The features are the same as without
    streaming. ``weights=False`` reads none (``table.reader(i)`` reads row ``i`` when needed).

    The zoo is verified first (:func:`phasezoo.verify.verified_zoo`; a hub id is downloaded and its
    folder verified): a damaged or crafted zoo is named in one line before a row is read.

    Raises:
        ValueError: if the zoo does not verify, a column the benchmark needs is missing (the
            message names it), or its weights would not fit in memory.
    """
    import datasets

    from phasezoo.verify import verified_zoo

    folder = verified_zoo(path_or_id)
    ds = datasets.load_dataset(str(folder), split=split).with_format("numpy")
    missing = [c for c in (*META_COLUMNS, "weights", "layout") if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path_or_id}: not a phasezoo zoo, column '{missing[0]}' is missing")
    meta = pd.DataFrame({c: ds[c] for c in ds.column_names
                         if c in META_COLUMNS or c.startswith(HP_PREFIX)})
    for c in ("model_id", "zoo", "cell", "temperature_name", "load_name", "phase"):
        meta[c] = meta[c].astype(str)
    keep = (~meta["diverged"].to_numpy(dtype=bool)
            & np.isfinite(meta["train_accuracy"].to_numpy(float))
            & np.isfinite(meta["test_accuracy"].to_numpy(float)))
    rows = np.flatnonzero(keep)
    layer_cols = [c for c in ds.column_names if c.startswith("layer_")]
    layouts = ds["layout"]
    table = ZooTable(
        meta=meta[keep].reset_index(drop=True), weights=None,
        layouts=[parse_layout(str(layouts[i])) for i in rows],
        layer_columns={c: [np.asarray(ds[c][i], dtype=np.float64) for i in rows]
                       for c in layer_cols})
    table.reader = lambda live: np.asarray(ds[int(rows[live])]["weights"], dtype=np.float32)
    if not weights:
        table.note = "weights read row by row through table.reader"
        return table
    sizes = [4 * num_values(layout["entries"]) for layout in table.layouts]
    _check_fits(path_or_id, max(sizes, default=0) if stream else sum(sizes), stream)
    if not stream:
        table.weights = [table.reader(i) for i in range(len(rows))]
        return table
    return _stream_weights(ds.select_columns(["weights"]), keep, table, raw_max_mb)


def _check_fits(zoo: str, need: int, stream: bool) -> None:
    """Refuse, before any weight is read, to read more bytes than the machine has available
    (half of it: the features and a model come on top): a verified zoo's rows are real bytes
    on disk, but a zoo may still be far larger than memory."""
    import psutil

    free = psutil.virtual_memory().available // 2
    if need > free:
        what = "its largest row" if stream else "its weights"
        raise ValueError(f"{zoo}: {what} take {need / 2 ** 30:.1f} GiB, more than the "
                         f"{free / 2 ** 30:.1f} GiB this machine can spare"
                         + ("" if stream else "; read it with --stream"))


def _stream_weights(ds, keep: np.ndarray, table: ZooTable, raw_max_mb: float) -> ZooTable:
    """Fill a table's statistics (and raw weights, within budget) one live row at a time."""
    stats: dict[tuple[float, ...], list] = {p: [] for p in PERCENTILE_SETS}
    raw: list[np.ndarray] | None = []
    raw_bytes = 0
    for live, row in enumerate(np.flatnonzero(keep)):
        w = np.asarray(ds[int(row)]["weights"], dtype=np.float32)
        for p in stats:
            stats[p].append(row_statistics(w, table.layouts[live], p))
        raw_bytes += w.nbytes
        if raw is not None and raw_bytes <= raw_max_mb * 2 ** 20:
            raw.append(w)
        else:
            raw = None
        del w
    for p, rows in stats.items():
        try:
            table.statistics[p] = stack_statistics(rows, p)
        except ValueError as err:  # kept for layer_statistics to raise, not blamed on the budget
            table.statistics_error = str(err)
    table.weights = raw
    if raw is None:
        table.note = (f"raw weights not loaded: {raw_bytes / 2 ** 20:.0f} MB exceed the "
                      f"streaming budget of {raw_max_mb:g} MB")
    return table


def concat(tables: list[ZooTable]) -> ZooTable:
    """Several zoos as one table (for zoo transfer); their ``layer_*`` columns must agree."""
    keys = set(tables[0].layer_columns)
    if any(set(t.layer_columns) != keys for t in tables):
        raise ValueError("zoos differ in their per-layer HT-SR columns")
    stats, errors = {}, [t.statistics_error for t in tables if t.statistics_error]
    for p in tables[0].statistics:
        if not all(p in t.statistics for t in tables):
            continue  # computed from the weights later, or statistics_error says why not
        parts = [t.statistics[p] for t in tables if len(t.statistics[p])]
        widths = sorted({part.shape[1] for part in parts})
        if len(widths) > 1:
            errors.append(f"layer statistics: the zoos mix architectures ({widths} statistics "
                          "per model); per-layer features need one layer count")
        else:
            stats[p] = np.concatenate(parts) if parts else tables[0].statistics[p]
    weights = (None if any(t.weights is None for t in tables)
               else [w for t in tables for w in t.weights])
    return ZooTable(pd.concat([t.meta for t in tables], ignore_index=True), weights,
                    [lay for t in tables for lay in t.layouts],
                    {k: [v for t in tables for v in t.layer_columns[k]] for k in keys},
                    stats, "; ".join(t.note for t in tables if t.note),
                    "; ".join(dict.fromkeys(errors)))


def zoo_splits_of(path_or_id: str, meta: pd.DataFrame) -> ZooSplits:
    """The benchmark splits a zoo ships (``splits.json`` in its folder, or in the verified
    download of a hub id, :func:`phasezoo.zoo_folder.hub_folder`; checked by
    :func:`phasezoo.splits.read_splits`), else the same splits computed from its rows; the
    result's ``source`` says which, and the report repeats it."""
    from phasezoo.zoo_folder import hub_folder

    local = Path(path_or_id)
    path = (local if local.is_dir() else hub_folder(str(path_or_id))) / SPLITS_FILE
    return read_splits(path, meta) if path.is_file() else computed_splits(meta)
