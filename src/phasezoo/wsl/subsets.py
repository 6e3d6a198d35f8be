"""Which rows and which splits a benchmark score is computed on: the splits a task is scored on
for one seed, and row subsets of a zoo table (the final checkpoint of every run, as Unterthiner
et al. (2020) use; one fixed-architecture subset per weight length, for the raw-weights probe).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phasezoo.splits import Split, ZooSplits, random_split, zoo_transfer
from phasezoo.wsl.baselines import Task
from phasezoo.wsl.table import ZooTable


def splits_for(splits: ZooSplits, meta: pd.DataFrame, task: Task, seed: int) -> list[Split]:
    """The splits a task is scored on (leave-phase-out is skipped for the phase task itself)."""
    out = splits.for_seed(meta, seed)
    return [s for s in out if not (task.name == "phase" and s.name.startswith("leave_phase_out"))]


def split_list(meta: pd.DataFrame, task: Task, seed: int, zoo_splits: ZooSplits | None,
               train_zoo: str | None) -> list[Split]:
    """The splits one seed scores: zoo transfer with ``train_zoo``, one random split for a
    fixed-architecture subset (``zoo_splits`` None), else the zoo's splits for the task."""
    if train_zoo is not None:
        return [zoo_transfer(meta, train_zoo, seed)]
    if zoo_splits is None:
        return [random_split(meta, seed)]
    return splits_for(zoo_splits, meta, task, seed)


def _subtable(table: ZooTable, rows: np.ndarray) -> ZooTable:
    """The table's ``rows``, every column and the row reader following them."""
    read = table.reader
    return ZooTable(table.meta.iloc[rows].reset_index(drop=True),
                    None if table.weights is None else [table.weights[i] for i in rows],
                    [table.layouts[i] for i in rows],
                    {k: [v[i] for i in rows] for k, v in table.layer_columns.items()},
                    {p: v[rows] for p, v in table.statistics.items()}, table.note,
                    table.statistics_error,
                    None if read is None else (lambda i: read(int(rows[i]))))


def final_checkpoints(table: ZooTable) -> ZooTable:
    """The last kept checkpoint of every run (model), as Unterthiner et al. (2020) use."""
    meta = table.meta
    last = meta.groupby("model_id")["epoch"].transform("max").to_numpy()
    return _subtable(table, np.flatnonzero(meta["epoch"].to_numpy() == last))


def architecture_subsets(table: ZooTable) -> list[tuple[str, ZooTable]]:
    """The whole table if every row has one weight length, else one sub-table per length (a
    fixed-architecture subset, labelled by its load value) with at least 5 cells."""
    lengths = np.array([len(w) for w in table.weights])
    if len(set(lengths)) == 1:
        return [("", table)]
    out = []
    for n in sorted(set(lengths)):
        rows = np.flatnonzero(lengths == n)
        sub = _subtable(table, rows)
        if sub.meta["cell"].nunique() >= 5:
            load = sub.meta["load_value"].iloc[0]
            out.append((f"[{sub.meta['load_name'].iloc[0]}={load:g}]", sub))
    return out
