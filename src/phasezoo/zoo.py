"""The published zoo format: pickle-free HDF5 shards that ``datasets.load_dataset`` reads.

A zoo folder holds ``data/<cell>.h5`` (one shard per grid cell; every dataset in a shard has one
row per (model, kept checkpoint)), a dataset card ``README.md`` whose YAML ``configs:`` points the
``datasets`` HDF5 builder at the shards, and ``SHA256SUMS``. Weights are a variable-length
float32 column so shards of different widths share one schema; ``layout`` (JSON) says how to turn
a row back into a ``state_dict`` and a working module (:func:`load_model`).
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
from phasezoo.card import read_batch_size, read_card_header, render_card, shard_features
from phasezoo.checkpoints import Population, open_population, read_data_info
from phasezoo.config import ZooSpec
from phasezoo.integrity import check, file_sha256
from phasezoo.phases import DIVERGED
from phasezoo.splits import SPLITS_FILE, cell_frame, splits_document
from phasezoo.weights import build_model, num_values, skeleton

# Columns every shard has, with their HDF5 kind; the card documents each one (COLUMN_DOCS).
REQUIRED_COLUMNS: dict[str, str] = {
    "model_id": "str", "zoo": "str", "cell": "str", "seed": "int", "epoch": "int",
    "temperature_name": "str", "temperature_value": "float",
    "load_name": "str", "load_value": "float",
    "train_loss": "float", "train_accuracy": "float", "test_loss": "float",
    "test_accuracy": "float", "diverged": "bool", "phase": "str",
    "weights": "float32_rows", "layout": "str",
}


# Seed-pair means, per cell.
CELL_PAIR_COLUMNS = ("cka", "mc", "mc_loss", "mc_chord", "mc_peak", "linear_barrier")


class VerifyError(ValueError):
    """A published zoo that fails a check; the message names the file or column."""


# Most values a row may hold: the datasets HDF5 builder turns a rows × values dataset into an Arrow
# fixed-size list, whose size is a 32-bit integer. The catalogue's largest row has 377M.
MAX_ROW_VALUES = 2 ** 31 - 1


def load_model(row: Mapping[str, Any]) -> nn.Module:
    """A working ``nn.Module`` (eval mode, CPU) from one zoo row (``weights`` + ``layout``).

    ``row["weights"]`` may be a NumPy array (``ds.with_format("numpy")``, the way to read big
    zoos), a tensor or a list. Peak memory: that vector plus the module (two rows).
    """
    return build_model(json.loads(row["layout"]), row["weights"])


CellSource = tuple[Population, pd.DataFrame, pd.DataFrame, Mapping[str, Any]]


def row_layout(layout: dict[str, Any], model: nn.Module) -> str:
    """A row's ``layout`` column: the model's layout plus ``htsr_layers``, the names of the
    ``layer_*`` lists (``model`` may be on the meta device)."""
    return json.dumps({**layout, "htsr_layers": htsr.layer_names(model)})


def cell_table(pop: Population, metrics: pd.DataFrame, pairs: pd.DataFrame,
               phase_row: Mapping[str, Any]) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """All rows of one cell's shard (without weights) and, per row, the (member, kept index) of
    its weights in ``pop.kept_weights``: the weights are read one row at a time when written."""
    hp = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in pop.hparams.items()}
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
                     "phase": phase_row["phase"], "phase_margin": float(phase_row["margin"]),
                     "phase_margin_rule": phase_row["margin_rule"], "layout": layout})
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
    read batch size derived from the largest row (:func:`phasezoo.card.read_batch_size`).
    """
    out = Path(zoos_dir) / zoo.name
    tmp, previous = out.with_name(f".{zoo.name}.publishing"), out.with_name(f".{zoo.name}.previous")
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
    n_rows, longest, shards = 0, 0, []
    for pop, metrics, pairs, phase_row in cells:
        table, keys = cell_table(pop, metrics, pairs, phase_row)
        shard, row_max = write_shard(folder / "data" / f"{pop.cell}.h5", table,
                                     (pop.kept_weights[i, k] for i, k in keys))
        shards.append(content_addressed(shard))
        n_rows, longest = n_rows + len(table), max(longest, row_max)
    files = [p.relative_to(folder).as_posix() for p in shards]
    (folder / SPLITS_FILE).write_text(splits_document(
        cell_frame(phases[phases["phase"] != DIVERGED])))  # a diverged cell has no rows
    card = render_card(zoo, phases, n_rows, data_info, files, shard_features(shards[0]),
                       read_batch_size(longest), note)
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




def verify(zoo_dir: str | Path) -> int:
    """Check checksums, then every shard's schema; return the number of rows.

    Raises:
        VerifyError: naming the first bad file or column.
    """
    zoo_dir = Path(zoo_dir)
    if not zoo_dir.is_dir():
        raise VerifyError(f"{zoo_dir}: no such zoo folder")
    _verify_checksums(zoo_dir)
    shards = sorted((zoo_dir / "data").glob("*.h5"))
    if not shards:
        raise VerifyError(f"{zoo_dir}/data: no .h5 shards")
    schema, rows, planes = None, 0, {}
    for shard in shards:
        shard_schema, n, plane = _verify_shard(shard, zoo_dir)
        if schema is not None and shard_schema != schema:
            diff = sorted(set(schema.items()) ^ set(shard_schema.items()))
            raise VerifyError(f"{shard.relative_to(zoo_dir)}: columns differ from the first "
                              f"shard's: {diff[:3]}")
        if plane:
            planes.setdefault(plane, shard.relative_to(zoo_dir))
        if len(planes) > 1:
            raise VerifyError(f"{shard.relative_to(zoo_dir)}: column 'topo_plane' grids of "
                              f"{sorted(planes)} values across shards (one zoo, one grid size)")
        schema, rows = shard_schema, rows + n
    _verify_card(zoo_dir, shards[0])
    return rows


def _verify_card(zoo_dir: Path, shard: Path) -> None:
    """The card declares every column of the shards with its feature, ``weights`` as a
    ``large_list``: the ``datasets`` builder drops a column the card leaves out, and a plain
    ``list`` overflows Arrow's 32-bit offsets on full-size rows."""
    header = read_card_header(zoo_dir / "README.md")
    config = next(iter(header.get("configs") or [{}]))
    declared = {f.get("name"): f for f in config.get("features") or []}
    actual = {f["name"]: f for f in shard_features(shard)}
    if declared != actual:
        diff = sorted(set(declared) ^ set(actual)) or sorted(
            n for n in actual if declared[n] != actual[n])
        raise VerifyError(f"README.md: the card's features do not match the shards' columns "
                          f"(first differences: {diff[:3]}); re-publish the zoo")
    batch = config.get("batch_size")
    if not isinstance(batch, int) or batch < 2:
        raise VerifyError(f"README.md: batch_size must be an integer ≥ 2, got {batch!r}")


def _verify_checksums(zoo_dir: Path) -> None:
    """Every listed file matches its digest, and every file is listed. Hidden entries (a hub
    download's ``.gitattributes`` and ``.cache``, Snakemake's ``.snakemake_timestamp``) are not
    part of a zoo and are left alone."""
    sums = zoo_dir / "SHA256SUMS"
    if not sums.is_file():
        raise VerifyError(f"{sums}: missing")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name, digest in listed.items():
        path = zoo_dir / name
        if not path.is_file():
            raise VerifyError(f"{name}: listed in SHA256SUMS but missing")
        if file_sha256(path) != digest:
            raise VerifyError(f"{name}: SHA-256 mismatch (corrupted or modified)")
    for path in sorted(zoo_dir.rglob("*")):
        name = path.relative_to(zoo_dir).as_posix()
        hidden = any(part.startswith(".") for part in path.relative_to(zoo_dir).parts)
        if path.is_file() and not hidden and name not in listed and name != "SHA256SUMS":
            raise VerifyError(f"{name}: not listed in SHA256SUMS (a file that is not part of "
                              "the published zoo)")


def _verify_shard(shard: Path, zoo_dir: Path) -> tuple[dict[str, str], int, int]:
    """Schema of one shard (column → dtype), its row count and its ``topo_plane`` size (0:
    none); raises on the first bad column."""
    name = shard.relative_to(zoo_dir).as_posix()
    try:
        f = h5py.File(shard, "r")
    except OSError as e:
        raise VerifyError(f"{name}: not a readable HDF5 file ({e})") from e
    with f:
        missing = [c for c in REQUIRED_COLUMNS if c not in f]
        if missing:
            raise VerifyError(f"{name}: missing column '{missing[0]}'")
        n = f["model_id"].shape[0]
        schema = {}
        for col, ds in f.items():
            if not isinstance(ds, h5py.Dataset) or ds.shape[:1] != (n,):
                raise VerifyError(f"{name}: column '{col}' does not have {n} rows")
            schema[col] = str(h5py.check_vlen_dtype(ds.dtype) or ds.dtype)
        _verify_weights(f, name, n)
        _verify_layer_lists(f, name, n)
        plane = _verify_planes(f, name, n)
    return schema, n, plane


def _verify_layer_lists(f: h5py.File, name: str, n: int) -> None:
    """Every per-layer list column has one value per layer named in the row's layout."""
    lists = [c for c in f if c.startswith("layer_")]
    for col in lists:
        if h5py.check_vlen_dtype(f[col].dtype) != np.float64:
            raise VerifyError(f"{name}: column '{col}' is not variable-length float64")
    for i in range(n):
        layers = json.loads(f["layout"][i]).get("htsr_layers", [])
        for col in lists:
            if len(f[col][i]) != len(layers):
                raise VerifyError(f"{name}: column '{col}' row {i} has {len(f[col][i])} values, "
                                  f"the layout names {len(layers)} layers")


def _verify_planes(f: h5py.File, name: str, n: int) -> int:
    """``topo_plane`` (when present) is variable-length float64 and holds, per row, nothing or
    one steps × steps grid (steps ≥ 3), the same in every measured row; returns that size (0:
    no plane), which :func:`verify` compares across shards."""
    if "topo_plane" not in f:
        return 0
    if h5py.check_vlen_dtype(f["topo_plane"].dtype) != np.float64:
        raise VerifyError(f"{name}: column 'topo_plane' is not variable-length float64")
    sizes = {len(plane) for plane in f["topo_plane"][:n]} - {0}  # one read of the column
    if len(sizes) > 1 or any(s < 9 or round(s ** 0.5) ** 2 != s for s in sizes):
        raise VerifyError(f"{name}: column 'topo_plane' rows hold {sorted(sizes)} values, not "
                          "one square grid of at least 3 × 3")
    return sizes.pop() if sizes else 0


def _verify_weights(f: h5py.File, name: str, n: int) -> None:
    """``weights`` is rows × values float32 and every row's layout needs exactly that many values
    (checked from the shape: no weights are read)."""
    ds = f["weights"]
    if ds.dtype != np.float32 or ds.ndim != 2:
        raise VerifyError(f"{name}: column 'weights' is not a 2-D float32 dataset (rows × values)")
    for i in range(n):
        layout = json.loads(f["layout"][i])
        if ds.shape[1] != num_values(layout["entries"]):
            raise VerifyError(f"{name}: column 'weights' row {i} does not match its 'layout' "
                              f"({ds.shape[1]:,} values, the layout needs "
                              f"{num_values(layout['entries']):,})")
