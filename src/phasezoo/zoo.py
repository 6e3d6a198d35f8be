"""The published zoo format: pickle-free HDF5 shards that ``datasets.load_dataset`` reads.

A zoo folder holds ``data/<cell>.h5`` (one shard per grid cell; every dataset in a shard has one
row per (model, kept checkpoint)), a dataset card ``README.md`` whose YAML ``configs:`` points the
``datasets`` HDF5 builder at the shards, and ``SHA256SUMS``. Weights are a variable-length
float32 column so shards of different widths share one schema; ``layout`` (JSON) says how to turn
a row back into a ``state_dict`` and a working module (:func:`load_model`). Checking a zoo
that someone else published is :mod:`phasezoo.verify`'s job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import h5py
import numpy as np
import pandas as pd
from torch import nn

from phasezoo import htsr
from phasezoo.atomic import write_atomic
from phasezoo.card import render_card
from phasezoo.checkpoints import Population, open_population, read_data_info
from phasezoo.config import ZooSpec
from phasezoo.folders import replaceable
from phasezoo.hub_card import read_batch_size, shard_features
from phasezoo.integrity import check, file_sha256
from phasezoo.vocabulary import DIVERGED
from phasezoo.split_configs import shipped_of, split_configs
from phasezoo.splits import SPLITS_FILE, cell_frame, splits_document
from phasezoo.weights import build_model, parse_layout, skeleton

# Columns every shard has, with their HDF5 kind; the card documents each one (COLUMN_DOCS).
REQUIRED_COLUMNS: dict[str, str] = {
    "model_id": "str", "zoo": "str", "cell": "str", "seed": "int", "epoch": "int",
    "temperature_name": "str", "temperature_value": "float",
    "load_name": "str", "load_value": "float",
    "train_loss": "float", "train_accuracy": "float", "test_loss": "float",
    "test_accuracy": "float", "diverged": "bool", "phase": "str", "llc": "float",
    "weights": "float32_rows", "layout": "str",
}


# Seed-pair means, per cell.
CELL_PAIR_COLUMNS = ("cka", "mc", "mc_loss", "mc_chord", "mc_peak", "linear_barrier")
# What those means rest on, per cell (phasezoo.phases.pair_counts): pairs with a finite CKA,
# pairs whose CKA is NaN (a collapsed model), pairs whose mc sign an end tie decided.
CELL_PAIR_COUNTS = ("cka_pairs", "cka_nan_pairs", "mc_end_ties")


# Most values a row may hold: the datasets HDF5 builder turns a rows × values dataset into an Arrow
# fixed-size list, whose size is a 32-bit integer. The catalogue's largest row has 377M.
MAX_ROW_VALUES = 2 ** 31 - 1


def load_model(row: Mapping[str, Any]) -> nn.Module:
    """A working ``nn.Module`` (eval mode, CPU) from one zoo row (``weights`` + ``layout``).

    ``row["weights"]`` may be a NumPy array (``ds.with_format("numpy")``, the way to read big
    zoos), a tensor or a list. Peak memory: that vector plus the module (two rows).
    """
    return build_model(parse_layout(row["layout"]), row["weights"])


CellSource = tuple[Population, pd.DataFrame, pd.DataFrame, Mapping[str, Any]]


def row_layout(layout: dict[str, Any], model: nn.Module) -> str:
    """A row's ``layout`` column: the model's layout plus ``htsr_layers``, the names of the
    ``layer_*`` lists (``model`` may be on the meta device)."""
    return json.dumps({**layout, "htsr_layers": htsr.layer_names(model)})


def cell_table(pop: Population, metrics: pd.DataFrame, pairs: pd.DataFrame,
               phase_row: Mapping[str, Any]) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """All rows of one cell's shard (without weights) and, per row, the (member, kept index) of
    its weights in ``pop.kept_weights``: the weights are read one row at a time when written."""
    hp = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in pop.recipe.record().items()}
    layout = row_layout(pop.layout, skeleton(pop.layout))
    rows, keys = [], []
    by_key = metrics.set_index(["seed", "epoch"])
    for i, k, epoch in pop.checkpoints():
        m = by_key.loc[(int(pop.seeds[i]), epoch)]
        rows.append({"model_id": pop.model_id(i), "zoo": pop.zoo, "cell": pop.cell,
                     "seed": int(pop.seeds[i]), "epoch": epoch,
                     **{c: phase_row[c] for c in ("temperature_name", "temperature_value",
                                                  "load_name", "load_value")},
                     **{f"hp_{k}": v for k, v in hp.items()},
                     **m.to_dict(), "diverged_epoch": int(pop.diverged_epoch[i]),
                     **{f"cell_{c}": pairs[c].mean() for c in CELL_PAIR_COLUMNS},
                     "landscape_epoch": int(phase_row["landscape_epoch"]),
                     **{f"cell_{c}": float(phase_row.get(c, np.nan)) for c in CELL_PAIR_COUNTS},
                     "phase": phase_row["phase"], "phase_margin": float(phase_row["margin"]),
                     "phase_margin_rule": phase_row["margin_rule"],
                     "phase_sensitive_to": str(phase_row.get("sensitive_to", "")),
                     "layout": layout})
        keys.append((i, k))
    return pd.DataFrame(rows), keys


def publish(zoo: ZooSpec, results_dir: str | Path, zoos_dir: str | Path) -> Path:
    """Build ``zoos_dir/<zoo>`` from the per-cell results; the folder appears only when complete.

    Memory: one checkpoint's weights at a time (plus one cell's metrics), whatever the cell size.
    """
    results = Path(results_dir) / zoo.name
    phases = pd.read_parquet(check(results / "phases.parquet"))
    for cell in zoo.cells():  # every input sound before the first shard is written
        for name in ("train.h5", "metrics.parquet", "pairs.parquet"):
            check(results / cell.id / name)

    def sources() -> Iterator[CellSource]:
        by_cell = phases.set_index("cell")
        for cell in zoo.cells():
            d = results / cell.id
            with open_population(d / "train.h5") as pop:
                yield (pop, pd.read_parquet(d / "metrics.parquet"),
                       pd.read_parquet(d / "pairs.parquet"), by_cell.loc[cell.id])

    data_info = read_data_info(results / zoo.cells()[0].id / "train.h5")
    return publish_cells(zoo, sources(), phases, data_info, zoos_dir)


def publish_cells(zoo: ZooSpec, cells: Iterable[CellSource], phases: pd.DataFrame,
                  data_info: dict, zoos_dir: str | Path, note: str = "") -> Path:
    """Write every cell's shard, the card and ``SHA256SUMS`` into ``zoos_dir/<zoo>``, atomically:
    the zoo is built in ``.<zoo>.publishing`` and swapped in when complete, so the last good zoo
    stays in place until then, and a failure leaves no half-written folder.

    The one writer of published zoos: ``publish`` feeds it trained cells, ``rehearse`` cells of
    initial weights. The card declares the columns' features (weights as ``large_list``) and a
    read batch size derived from the largest row (:func:`phasezoo.hub_card.read_batch_size`).
    """
    out = Path(zoos_dir) / zoo.name
    tmp, previous = out.with_name(f".{zoo.name}.publishing"), out.with_name(f".{zoo.name}.previous")
    for folder, card in ((out, True), (previous, True), (tmp, False)):
        replaceable(folder, card)  # only a zoo's own folders are ever moved or deleted
    if previous.exists() and not out.exists():  # killed between the two renames below
        os.replace(previous, out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_zoo(tmp, zoo, cells, phases, data_info, note)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written folder left behind
        raise
    shutil.rmtree(previous, ignore_errors=True)
    if out.exists():
        os.replace(out, previous)  # the last good zoo stays until the new one is in place
    os.replace(tmp, out)
    shutil.rmtree(previous, ignore_errors=True)
    return out


def _write_zoo(folder: Path, zoo: ZooSpec, cells: Iterable[CellSource], phases: pd.DataFrame,
               data_info: dict, note: str) -> None:
    """Every shard, the card and SHA256SUMS into ``folder``."""
    (folder / "data").mkdir(parents=True)
    n_rows, longest, shards, shard_of = 0, 0, [], {}
    for pop, metrics, pairs, phase_row in cells:
        table, keys = cell_table(pop, metrics, pairs, phase_row)
        shard, row_max = write_shard(folder / "data" / f"{pop.cell}.h5", table,
                                     (pop.kept_weights[i, k] for i, k in keys))
        shards.append(content_addressed(shard))
        shard_of[pop.cell] = shards[-1].relative_to(folder).as_posix()  # one shard per cell
        n_rows, longest = n_rows + len(table), max(longest, row_max)
    files = [p.relative_to(folder).as_posix() for p in shards]
    splits = splits_document(cell_frame(phases[phases["phase"] != DIVERGED]))  # benchmark drops
    (folder / SPLITS_FILE).write_text(splits)  # diverged rows, so its splits leave them out
    doc = json.loads(splits)
    configs = split_configs(shipped_of(doc["splits"]), shard_of)
    card = render_card(zoo, phases, n_rows, data_info, files, shard_features(shards[0]),
                       read_batch_size(longest), note, configs, doc)
    (folder / "README.md").write_text(card)
    write_checksums(folder)


def write_shard(path: Path, table: pd.DataFrame,
                weights: Iterable[np.ndarray]) -> tuple[Path, int]:
    """Write one cell's shard atomically: one HDF5 dataset per column; ``weights`` a 2-D float32
    dataset (rows × values, contiguous) filled one row at a time. Returns the path and the row
    length.

    Why 2-D and not variable-length: a cell's rows share one architecture, and h5py reads a row
    of a contiguous 2-D dataset straight into one array (3.7 GB/s here), where a variable-length
    row of 400M values took 8 s and 6 rows of memory through HDF5's own buffers.

    Raises:
        ValueError: if a row's length differs from the first row's or exceeds
            :data:`MAX_ROW_VALUES`, or the weight rows are fewer or more than the table's rows.
    """
    n, lengths = len(table), []  # the row length, set by write

    def write(tmp: Path) -> None:
        length, written = 0, 0
        with h5py.File(tmp, "w") as f:
            for col in table.columns:
                f.create_dataset(col, data=_column_array(table[col]))
            for i, w in enumerate(weights):
                w = np.asarray(w, dtype=np.float32).reshape(-1)
                if i == 0:
                    length = _check_row_length(path, w.size)
                    ds = f.create_dataset("weights", (n, length), dtype=np.float32)
                if i >= n or w.size != length:
                    raise ValueError(f"{path.name}: more weight rows than table rows ({n})"
                                     if i >= n else f"{path.name}: row {i} has {w.size:,} "
                                     f"values, row 0 has {length:,} (one architecture per cell)")
                ds[i] = w
                written = i + 1
                del w  # before the next row is made: one row in memory, not two
        if written != n:
            raise ValueError(f"{path.name}: {written} weight rows for {n} table rows")
        lengths.append(length)

    write_atomic(path, write)
    return path, lengths[0]


def _check_row_length(path: Path, length: int) -> int:
    if not 0 < length <= MAX_ROW_VALUES:
        raise ValueError(f"{path.name}: a row has {length:,} values; the format holds 1 to "
                         f"{MAX_ROW_VALUES:,} per row")
    return length


def content_addressed(shard: Path) -> Path:
    """Rename ``<cell>.h5`` to ``<cell>-<sha256[:12]>.h5``.

    ``datasets`` caches a local dataset under a hash of its card and file names, not of file
    contents: a re-published zoo with the same shard names would load stale rows from the cache.
    Content-addressed names make every new zoo a new cache entry.
    """
    named = shard.with_name(f"{shard.stem}-{file_sha256(shard)[:12]}{shard.suffix}")
    os.replace(shard, named)
    return named


def _column_array(col: pd.Series) -> np.ndarray:
    """A pandas column as an HDF5-storable array (strings as UTF-8 variable-length; lists, such
    as the per-layer HT-SR columns, as variable-length float64)."""
    lists = [isinstance(v, (list, tuple, np.ndarray)) for v in col]
    if any(lists):
        if not all(lists):
            row = lists.index(False)
            raise ValueError(f"column '{col.name}' mixes lists and scalars (row {row}: "
                             f"{col.iloc[row]!r}); per-layer columns need a list in every row")
        out = np.empty(len(col), dtype=h5py.vlen_dtype(np.float64))
        out[:] = [np.asarray(v, dtype=np.float64) for v in col]
        return out
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(col):
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(col):
        return col.to_numpy(dtype=np.float64)
    return np.array([str(v) for v in col], dtype=h5py.string_dtype("utf-8"))


def write_checksums(zoo_dir: Path) -> Path:
    """``SHA256SUMS`` over the card and every shard, in ``sha256sum -c`` format."""
    files = sorted(p for p in zoo_dir.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{file_sha256(p)}  {p.relative_to(zoo_dir).as_posix()}\n" for p in files]
    out = zoo_dir / "SHA256SUMS"
    out.write_text("".join(lines))
    return out
