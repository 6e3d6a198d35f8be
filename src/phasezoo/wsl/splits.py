"""Train / validation / test splits grouped by cell: the seeds of one cell never straddle sets.

Model selection uses the validation rows only; the test rows are scored once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

VAL_FRACTION = 0.2
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """Row indices of one split; ``name`` says which (e.g. ``leave_phase_out:II``)."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _rows(meta: pd.DataFrame, cells: np.ndarray) -> np.ndarray:
    return np.flatnonzero(meta["cell"].isin(cells).to_numpy())


def _train_val(meta: pd.DataFrame, cells: np.ndarray, rng: np.random.Generator,
               name: str, test: np.ndarray) -> Split:
    cells = rng.permutation(cells)
    n_val = max(1, round(VAL_FRACTION * len(cells)))
    return Split(name, _rows(meta, cells[n_val:]), _rows(meta, cells[:n_val]), test)


def random_split(meta: pd.DataFrame, seed: int) -> Split:
    """Cells shuffled by ``seed``: 60% train, 20% validation, 20% test."""
    rng = np.random.default_rng(seed)
    cells = rng.permutation(meta["cell"].unique())
    n_test = max(1, round(TEST_FRACTION * len(cells)))
    return _train_val(meta, cells[n_test:], rng, "random", _rows(meta, cells[:n_test]))


def leave_phase_out(meta: pd.DataFrame, seed: int) -> list[Split]:
    """One split per phase: its cells are the test set; train on the other phases' cells."""
    out = []
    by_cell = meta.groupby("cell")["phase"].first()
    for phase in sorted(by_cell.unique()):
        rest = by_cell.index[by_cell != phase].to_numpy()
        if len(rest) < 2:
            continue
        rng = np.random.default_rng(seed)
        test = _rows(meta, by_cell.index[by_cell == phase].to_numpy())
        out.append(_train_val(meta, rest, rng, f"leave_phase_out:{phase}", test))
    return out


def scale_transfer(meta: pd.DataFrame, seed: int) -> Split | None:
    """Train on the smaller half of the load values, test on the larger (None if < 2 values)."""
    loads = np.sort(meta["load_value"].unique())
    if len(loads) < 2:
        return None
    cut = loads[(len(loads) - 1) // 2]
    by_cell = meta.groupby("cell")["load_value"].first()
    small = by_cell.index[by_cell <= cut].to_numpy()
    if len(small) < 2:
        return None
    test = _rows(meta, by_cell.index[by_cell > cut].to_numpy())
    return _train_val(meta, small, np.random.default_rng(seed), "scale_transfer", test)


def zoo_transfer(meta: pd.DataFrame, train_zoo: str, seed: int) -> Split:
    """Train (and validate) on ``train_zoo``'s cells, test on every other zoo in ``meta``."""
    in_a = meta["zoo"] == train_zoo
    cells = meta.loc[in_a, "cell"].unique()
    rng = np.random.default_rng(seed)
    cells = rng.permutation(cells)
    n_val = max(1, round(VAL_FRACTION * len(cells)))
    rows_a = lambda cs: np.flatnonzero((in_a & meta["cell"].isin(cs)).to_numpy())  # noqa: E731
    return Split(f"zoo_transfer:{train_zoo}", rows_a(cells[n_val:]), rows_a(cells[:n_val]),
                 np.flatnonzero(~in_a.to_numpy()))
