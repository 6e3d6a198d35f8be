"""The published zoo format: pickle-free HDF5 shards that ``datasets.load_dataset`` reads.

A zoo folder holds ``data/<cell>.h5`` (one shard per grid cell; every dataset in a shard has one
row per (model, kept checkpoint)), a dataset card ``README.md`` whose YAML ``configs:`` points the
``datasets`` HDF5 builder at the shards, and ``SHA256SUMS``. Weights are a variable-length
float32 column so shards of different widths share one schema; ``layout`` (JSON) says how to turn
a row back into a ``state_dict`` and a working module (:func:`load_model`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import pandas as pd
import torch
from torch import nn

from phasezoo import htsr
from phasezoo.card import render_card
from phasezoo.checkpoints import read_data_info, read_population
from phasezoo.config import ZooSpec
from phasezoo.weights import build_model, num_values

# Columns every shard has, with their HDF5 kind; the card documents each one (COLUMN_DOCS).
REQUIRED_COLUMNS: dict[str, str] = {
    "model_id": "str", "zoo": "str", "cell": "str", "seed": "int", "epoch": "int",
    "temperature_name": "str", "temperature_value": "float",
    "load_name": "str", "load_value": "float",
    "train_loss": "float", "train_accuracy": "float", "test_loss": "float",
    "test_accuracy": "float", "diverged": "bool", "phase": "str",
    "weights": "vlen_float32", "layout": "str",
}


CELL_PAIR_COLUMNS = ("cka", "mc", "mc_loss", "linear_barrier")  # seed-pair means, per cell


class VerifyError(ValueError):
    """A published zoo that fails a check; the message names the file or column."""


def load_model(row: Mapping[str, Any]) -> nn.Module:
    """A working ``nn.Module`` (eval mode, CPU) from one zoo row (``weights`` + ``layout``)."""
    layout = json.loads(row["layout"])
    return build_model(layout, torch.as_tensor(np.asarray(row["weights"], dtype=np.float32)))


def cell_table(train_h5: Path, metrics: pd.DataFrame, pairs: pd.DataFrame,
               phase_row: Mapping[str, Any]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """All rows of one cell's shard (without weights) and the matching flat weight vectors."""
    pop = read_population(train_h5)
    hp = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in pop.hparams.items()}
    layout = json.dumps({**pop.layout, "htsr_layers": htsr.layer_names(pop.model(0, 0))})
    rows, weights = [], []
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
                     "phase": phase_row["phase"], "phase_margin": float(phase_row["margin"]),
                     "phase_margin_rule": phase_row["margin_rule"], "layout": layout})
        weights.append(pop.kept_weights[i, k])
    return pd.DataFrame(rows), weights


def publish(zoo: ZooSpec, results_dir: str | Path, zoos_dir: str | Path) -> Path:
    """Build ``zoos_dir/<zoo>`` from the per-cell results; the folder appears only when complete."""
    results = Path(results_dir) / zoo.name
    out = Path(zoos_dir) / zoo.name
    tmp = out.with_name(f".{zoo.name}.publishing")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    phases = pd.read_parquet(results / "phases.parquet").set_index("cell")
    n_rows, shards = 0, []
    for cell in zoo.cells():
        d = results / cell.id
        table, weights = cell_table(d / "train.h5", pd.read_parquet(d / "metrics.parquet"),
                                    pd.read_parquet(d / "pairs.parquet"), phases.loc[cell.id])
        shards.append(content_addressed(write_shard(tmp / "data" / f"{cell.id}.h5", table, weights)))
        n_rows += len(table)
    data_info = read_data_info(results / zoo.cells()[0].id / "train.h5")
    files = [p.relative_to(tmp).as_posix() for p in shards]
    card = render_card(zoo, phases.reset_index(), n_rows, data_info, files)
    (tmp / "README.md").write_text(card)
    write_checksums(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def write_shard(path: Path, table: pd.DataFrame, weights: list[np.ndarray]) -> Path:
    """Write one shard atomically: one HDF5 dataset per column, weights as vlen float32."""
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        for col in table.columns:
            f.create_dataset(col, data=_column_array(table[col]))
        ds = f.create_dataset("weights", (len(weights),), dtype=h5py.vlen_dtype(np.float32))
        for i, w in enumerate(weights):
            ds[i] = w
    os.replace(tmp, path)
    return path


def content_addressed(shard: Path) -> Path:
    """Rename ``<cell>.h5`` to ``<cell>-<sha256[:12]>.h5``.

    ``datasets`` caches a local dataset under a hash of its card and file names, not of file
    contents: a re-published zoo with the same shard names would load stale rows from the cache.
    Content-addressed names make every new zoo a new cache entry.
    """
    named = shard.with_name(f"{shard.stem}-{_sha256(shard)[:12]}{shard.suffix}")
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
    files = sorted(p for p in zoo_dir.rglob("*") if p.is_file() and p.name != "SHA256SUMS"
                   and not p.name.endswith(".tmp"))
    lines = [f"{_sha256(p)}  {p.relative_to(zoo_dir).as_posix()}\n" for p in files]
    out = zoo_dir / "SHA256SUMS"
    out.write_text("".join(lines))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(zoo_dir: str | Path) -> int:
    """Check checksums, then every shard's schema; return the number of rows.

    Raises:
        VerifyError: naming the first bad file or column.
    """
    zoo_dir = Path(zoo_dir)
    _verify_checksums(zoo_dir)
    shards = sorted((zoo_dir / "data").glob("*.h5"))
    if not shards:
        raise VerifyError(f"{zoo_dir}/data: no .h5 shards")
    schema, rows = None, 0
    for shard in shards:
        shard_schema, n = _verify_shard(shard, zoo_dir)
        if schema is not None and shard_schema != schema:
            diff = sorted(set(schema.items()) ^ set(shard_schema.items()))
            raise VerifyError(f"{shard.relative_to(zoo_dir)}: columns differ from the first "
                              f"shard's: {diff[:3]}")
        schema, rows = shard_schema, rows + n
    return rows


def _verify_checksums(zoo_dir: Path) -> None:
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
        if _sha256(path) != digest:
            raise VerifyError(f"{name}: SHA-256 mismatch (corrupted or modified)")
    for shard in (zoo_dir / "data").glob("*.h5"):
        if shard.relative_to(zoo_dir).as_posix() not in listed:
            raise VerifyError(f"{shard.relative_to(zoo_dir)}: not listed in SHA256SUMS")


def _verify_shard(shard: Path, zoo_dir: Path) -> tuple[dict[str, str], int]:
    """Schema of one shard (column → dtype) and its row count; raises on the first bad column."""
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
    return schema, n


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


def _verify_weights(f: h5py.File, name: str, n: int) -> None:
    if h5py.check_vlen_dtype(f["weights"].dtype) != np.float32:
        raise VerifyError(f"{name}: column 'weights' is not variable-length float32")
    for i in range(n):
        layout = json.loads(f["layout"][i])
        if len(f["weights"][i]) != num_values(layout["entries"]):
            raise VerifyError(f"{name}: column 'weights' row {i} does not match its 'layout'")
