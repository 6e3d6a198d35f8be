"""Learning curves: a learned baseline's score against the number of cells it was trained on.

Why: a learned weight-space method that scores below a table of statistics may be a weak method
or a starved one; the curve tells which. The random split's validation and test cells stay fixed
and its training cells are taken in nested subsets (the first k of one shuffle per seed), so each
point differs from the next only by the cells added.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from phasezoo.splits import Split

CURVE_TASK = "test_accuracy"  # the benchmark's headline regression task
CURVE_FRACTIONS = (0.125, 0.25, 0.5, 1.0)  # of the random split's training cells
MIN_CELLS = 2  # fewer training cells give a model nothing to fit across cells

FitPredict = Callable[[Split, int], "np.ndarray | None"]
Record = Callable[[Split, int, np.ndarray], dict]  # (split, seed, predictions) → a scored record


def curve_sizes(n_cells: int, fractions: tuple[float, ...] = CURVE_FRACTIONS) -> list[int]:
    """The numbers of training cells the curve is scored at: each fraction of ``n_cells``
    rounded, at least :data:`MIN_CELLS`, without repeats (empty under MIN_CELLS cells)."""
    if n_cells < MIN_CELLS:
        return []
    return sorted({min(n_cells, max(MIN_CELLS, round(f * n_cells))) for f in fractions})


def nested_splits(meta: pd.DataFrame, split: Split, seed: int,
                  fractions: tuple[float, ...] = CURVE_FRACTIONS) -> list[Split]:
    """``split`` with its training rows cut to the first k of its training cells in one shuffle
    (by ``seed``), for every k of :func:`curve_sizes`; validation and test rows unchanged."""
    cell_of = meta["cell"].to_numpy()
    cells = np.random.default_rng(seed).permutation(pd.unique(cell_of[split.train]))
    out = []
    for k in curve_sizes(len(cells), fractions):
        rows = split.train[np.isin(cell_of[split.train], cells[:k])]
        out.append(Split(f"{split.name}[train={k}]", rows, split.val, split.test))
    return out


def curve_records(meta: pd.DataFrame, random_splits: dict[int, Split],
                  fit_predicts: dict[str, FitPredict], record: Record,
                  tick: Callable[[], object] = lambda: None) -> list[dict]:
    """Each fit-predict step scored on every nested training set of each seed's random split
    (``random_splits[seed]``); ``record`` scores one prediction as the benchmark does. A step
    that returns None (a method that does not score this split or seed) adds no point.
    ``random_splits``: each seed's random split, by seed (a seed without one is absent)."""
    cell_of, out = meta["cell"].to_numpy(), []
    for seed, split in random_splits.items():
        for sub in nested_splits(meta, split, seed):
            k = len(np.unique(cell_of[sub.train]))  # the point's x: its own training cells
            for name, fit_predict in fit_predicts.items():
                pred = fit_predict(sub, seed)
                if pred is not None:
                    out.append({**record(sub, seed, np.asarray(pred)), "baseline": name,
                                "train_cells": k,
                                "val_cells": len(np.unique(cell_of[sub.val]))})
                tick()
    return out


def summarize_curve(records: list[dict]) -> list[dict]:
    """One point per (baseline, number of training cells; validation cells are fixed and not
    counted): R² mean and standard deviation over seeds, and the mean bootstrap spread over test
    cells (the spread with one seed)."""
    df = pd.DataFrame([{k: r[k] for k in ("baseline", "train_cells", "r2", "bootstrap_std")}
                       for r in records])
    if df.empty:
        return []
    out = []
    for (name, k), g in df.groupby(["baseline", "train_cells"], sort=False):
        r2 = g["r2"].dropna()
        out.append({"baseline": name, "train_cells": int(k),
                    "r2": float(r2.mean()) if len(r2) else float("nan"),
                    "std": float(r2.std(ddof=1)) if len(r2) > 1 else float("nan"),
                    "bootstrap_std": float(g["bootstrap_std"].mean()), "seeds": int(len(r2))})
    return sorted(out, key=lambda e: (e["baseline"], e["train_cells"]))
