"""Benchmark splits of a zoo, grouped by cell: the seeds of one cell never straddle sets.

Train / validation / test by cell: random, leave-one-phase-out, scale transfer, zoo transfer.
Model selection uses the validation rows only; the test rows are scored once. A published zoo
ships its splits (``splits.json``), so results on "zoo X, split Y, seed Z" are comparable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

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


# The splits a published zoo ships (``splits.json``, listed in its card), so that "zoo X, split
# Y, seed Z" names the same test models in every paper; a zoo without the file gets the same
# splits computed from its rows.
SPLITS_FILE = "splits.json"
# The file's version, bumped when its keys or the rules that draw the splits change (a file names
# its cells, so older versions stay readable). 2: labels_digest and cells (what the splits were
# drawn from).
SPLITS_FORMAT = 2
READABLE_FORMATS = (1, 2)
SHIPPED_SEEDS = 10
MAX_SPLITS_BYTES = 64 << 20  # a downloaded file larger than this is refused before it is read


def cell_frame(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (``cell``, ``phase``, ``load_value``), sorted by cell id: the input of
    every split, so that the splits do not depend on the order in which rows were read."""
    cells = table.drop_duplicates("cell")[["cell", "phase", "load_value"]]
    return cells.sort_values("cell", kind="stable").reset_index(drop=True)


def zoo_splits(cells: pd.DataFrame, seed: int) -> list[Split]:
    """Every split of one seed, by cell position in ``cells`` (:func:`cell_frame`): random,
    leave-phase-out for each phase, scale transfer (when the load axis has 2+ values)."""
    st = scale_transfer(cells, seed)
    return [random_split(cells, seed), *leave_phase_out(cells, seed), *([st] if st else [])]


def split_records(cells: pd.DataFrame, seeds: int = SHIPPED_SEEDS) -> list[dict]:
    """The splits of seeds ``0 … seeds-1`` as JSON records of cell ids (what ``splits.json``
    holds)."""
    ids = cells["cell"].to_numpy()
    return [{"name": s.name, "seed": seed, "train": ids[s.train].tolist(),
             "val": ids[s.val].tolist(), "test": ids[s.test].tolist()}
            for seed in range(seeds) for s in zoo_splits(cells, seed)]


def labels_digest(cells: pd.DataFrame) -> str:
    """SHA-256 (first 16 hex digits) of what the splits are drawn from: every labelled cell's
    id, phase and load value (:func:`cell_frame`).

    Why recorded: ``random`` and ``scale_transfer`` depend only on the set of labelled cells
    (and the load values), ``leave_phase_out`` also on each cell's phase; a rebuild whose labels
    are the same draws the same splits, byte for byte, and one whose labels moved (other
    thresholds, another metric protocol, another cell diverging) says so by a new digest.
    """
    rows = cell_frame(cells)[["cell", "phase", "load_value"]].to_numpy().tolist()
    blob = json.dumps([[str(c), str(p), float(v)] for c, p, v in rows])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def splits_document(cells: pd.DataFrame, seeds: int = SHIPPED_SEEDS) -> str:
    """The text of a zoo's ``splits.json``: a function of the labelled cells alone (no date,
    no version), so two builds with the same labels ship the same file."""
    cells = cell_frame(cells)
    doc = {"format": SPLITS_FORMAT, "grouped_by": "cell", "seeds": seeds,
           "cells": len(cells), "labels_digest": labels_digest(cells),
           "splits": split_records(cells, seeds)}
    return json.dumps(doc, indent=1)


@dataclass(frozen=True)
class ZooSplits:
    """A zoo's benchmark splits by seed: the shipped ones (``source`` says where from) and, for
    seeds beyond them, the same computation on the zoo's cells."""

    cells: pd.DataFrame
    shipped: dict[int, list[tuple[str, tuple, tuple, tuple]]]
    source: str

    def for_seed(self, meta: pd.DataFrame, seed: int) -> list[Split]:
        """The splits of ``seed`` as row indices of ``meta`` (rows of one cell stay together)."""
        if seed not in self.shipped:
            ids = self.cells["cell"].to_numpy()
            return [Split(s.name, _rows(meta, ids[s.train]), _rows(meta, ids[s.val]),
                          _rows(meta, ids[s.test])) for s in zoo_splits(self.cells, seed)]
        return [Split(name, _rows(meta, np.array(tr)), _rows(meta, np.array(va)),
                      _rows(meta, np.array(te))) for name, tr, va, te in self.shipped[seed]]


def computed_splits(meta: pd.DataFrame) -> ZooSplits:
    """The splits of a zoo that ships none, computed from its rows."""
    return ZooSplits(cell_frame(meta), {}, "computed from the zoo's cells (no splits.json)")


def _shared_cell(parts: dict[str, list[str]]) -> str | None:
    """The first cell that two of a split's sets share (``'c' in train and test``), else None.
    Why: a test cell that is also trained on is scored as if unseen (test R² rose from 0.22 to
    0.99 on a zoo whose every test cell was also in train)."""
    names = list(parts)
    for a, b in ((x, y) for k, x in enumerate(names) for y in names[k + 1:]):
        both = sorted(set(parts[a]) & set(parts[b]))
        if both:
            return f"cell '{both[0]}' is in both {a} and {b}"
    return None


def read_splits(path: Path, meta: pd.DataFrame) -> ZooSplits:
    """A zoo's shipped ``splits.json``, checked as untrusted input: its size before it is read,
    its format, that every cell it names is a cell of ``meta``, and that no cell is in two of a
    split's train, validation and test sets.

    Raises:
        ValueError: naming the file and what is wrong with it.
    """
    size = path.stat().st_size
    if size > MAX_SPLITS_BYTES:
        raise ValueError(f"{path}: {size:,} bytes, more than a splits file may hold "
                         f"({MAX_SPLITS_BYTES:,})")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON splits file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{path}: not a splits file of format {READABLE_FORMATS}")
    known, shipped = set(meta["cell"]), {}
    for i, rec in enumerate(doc.get("splits") or []):
        parts = [rec.get(k) if isinstance(rec, dict) else None for k in ("train", "val", "test")]
        if (not isinstance(rec, dict) or not isinstance(rec.get("name"), str)
                or not isinstance(rec.get("seed"), int)
                or not all(isinstance(p, list) and all(isinstance(c, str) for c in p)
                           for p in parts)):
            raise ValueError(f"{path}: split {i} is not {{name, seed, train, val, test}}")
        unknown = sorted(set().union(*parts) - known)
        if unknown:
            raise ValueError(f"{path}: split {i} ({rec['name']}) names cells the zoo does not "
                             f"have: {unknown[:3]}")
        leak = _shared_cell(dict(zip(("train", "val", "test"), parts)))
        if leak:
            raise ValueError(f"{path}: split {i} ({rec['name']}, seed {rec['seed']}) leaks: {leak}")
        shipped.setdefault(rec["seed"], []).append((rec["name"], *map(tuple, parts)))
    return ZooSplits(cell_frame(meta), shipped, f"shipped with the zoo ({path.name})")
