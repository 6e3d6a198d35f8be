"""Zoo rows as files other tools read: one safetensors file per model and kept epoch.

Why: a row is a flat float32 vector plus a ``layout`` JSON, which only phasezoo turns back into
a module. A safetensors file holds the module's own ``state_dict`` (names, shapes, dtypes), so
WeightWatcher, PyHessian or nfn users read a model with ``safetensors.torch.load_file`` alone.
The row's other columns (cell, seed, epoch, phase, ``hp_*``, metrics, ``layout``) go in the
file's metadata, each JSON-encoded (NaN as ``null``), under its column name; ``format`` is
``"pt"`` as the Hugging Face convention has it.

A zoo is untrusted input: it is verified before a row is read (:func:`phasezoo.verify.verified_zoo`),
a file name is built from the row's cell with every character but ``[A-Za-z0-9_.+-]``
replaced, so a cell name never reaches outside ``out`` (no separator, no leading dot), and two
rows that would share a name are refused instead of overwriting each other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from phasezoo.atomic import write_atomic

FORMATS = ("safetensors",)
# Columns a selection filters on, and the row columns that are not metadata.
FILTERS = ("cell", "phase", "epoch")
NOT_METADATA = ("weights",)
MAX_NAME_CHARS = 120  # of the cell part of a file name (a crafted zoo may hold any length)


def export_file_name(cell: str, seed: int, epoch: int) -> str:
    """``<cell>_seed-<seed>_epoch-<epoch>.safetensors``, the cell made safe for a file name:
    only ``[A-Za-z0-9_.+-]`` kept (a config's cell ids use nothing else), a leading dot
    replaced, at most :data:`MAX_NAME_CHARS` characters."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(cell))[:MAX_NAME_CHARS]
    safe = re.sub(r"^\.", "_", safe) or "_"
    return f"{safe}_seed-{int(seed)}_epoch-{int(epoch)}.safetensors"


def export_file_names(keys: Sequence[tuple[str, int, int]]) -> list[str]:
    """The file name of each (cell, seed, epoch) (:func:`export_file_name`).

    Raises:
        ValueError: if two rows would share a name (cells that differ only in characters a
            file name cannot hold): one would overwrite the other.
    """
    names = [export_file_name(*key) for key in keys]
    seen: dict[str, tuple] = {}
    for name, key in zip(names, keys, strict=True):
        if seen.setdefault(name, key) != key:
            raise ValueError(f"cells {seen[name][0]!r} and {key[0]!r} would both be written "
                             f"as {name}")
    return names


def metadata_value(value: Any) -> Any:
    """A column value as plain JSON data: NumPy scalars and arrays as Python numbers and lists,
    NaN as None (JSON has no NaN; ``null`` reads everywhere)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [metadata_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row_metadata(row: Mapping[str, Any]) -> dict[str, str]:
    """A row's safetensors metadata: every column but the weights, JSON-encoded, plus
    ``format: pt``."""
    meta = {str(k): json.dumps(metadata_value(v), allow_nan=False) for k, v in row.items()
            if k not in NOT_METADATA}
    return meta | {"format": "pt"}


def read_metadata(path: str | Path) -> dict[str, Any]:
    """An exported file's metadata decoded: each column's value as the row had it (NaN as None)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return {k: v if k == "format" else json.loads(v) for k, v in meta.items()}


def write_safetensors(row: Mapping[str, Any], weights: Any, path: Path) -> Path:
    """One row's module (``weights`` and the row's ``layout``) as a safetensors file with the
    row's other columns as its metadata, written atomically."""
    from safetensors.torch import save_file

    from phasezoo.zoo import load_model

    # the module's own names, shapes and dtypes
    state = load_model({"weights": weights, "layout": row["layout"]}).state_dict()
    return write_atomic(path, lambda tmp: save_file(state, str(tmp), metadata=row_metadata(row)))


def selected_rows(columns: Mapping[str, Sequence[Any]], cells: Iterable[str] | None = None,
                  phases: Iterable[str] | None = None,
                  epochs: Iterable[int] | None = None) -> list[int]:
    """Indices of the rows whose cell, phase and epoch are among those asked for (None: any).

    Raises:
        ValueError: naming a value no row has (with the values there are), or a selection
            that leaves no row.
    """
    wanted = dict(zip(FILTERS, (cells, phases, epochs)))
    keep = np.ones(len(columns["cell"]), dtype=bool)
    for name, values in wanted.items():
        if values is None:
            continue
        have = [str(v) for v in columns[name]]
        unknown = sorted({str(v) for v in values} - set(have))
        if unknown:
            raise ValueError(f"--{name} {unknown[0]}: no row has it (the zoo's: "
                             f"{', '.join(sorted(set(have), key=_natural)[:20])})")
        keep &= np.isin(have, [str(v) for v in values])
    if not keep.any():
        raise ValueError("no row has all of the selected " + ", ".join(
            f"{k} {list(v)}" for k, v in wanted.items() if v is not None))
    return np.flatnonzero(keep).tolist()


def _natural(text: str) -> tuple:
    """Sort key that puts ``epoch 10`` after ``epoch 9``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def export_zoo(zoo: str, out: str | Path, fmt: str = "safetensors",
               cells: Iterable[str] | None = None, phases: Iterable[str] | None = None,
               epochs: Iterable[int] | None = None, progress: bool = True) -> list[Path]:
    """Write the selected rows of a zoo (folder or hub id) into ``out``, one file each; returns
    their paths. Memory: one row and its module at a time.

    Raises:
        ValueError: an unknown format, a zoo that does not verify, a selection naming what the
            zoo lacks, or two rows whose file names would collide.
    """
    import datasets
    from tqdm.auto import tqdm

    from phasezoo.verify import verified_zoo

    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: not one of {', '.join(FORMATS)}")
    ds = datasets.load_dataset(str(verified_zoo(zoo)), split="train")
    keys = ds.select_columns(["cell", "seed", "epoch", "phase"])[:]
    # Columns as stored (the numpy format reads float64 lists as float32); the weights as one
    # NumPy array (a Python list of a big row would take ten times its memory).
    meta = ds.remove_columns(list(NOT_METADATA))
    weights = ds.select_columns(["weights"]).with_format("numpy")
    rows = selected_rows(keys, cells, phases, epochs)
    names = export_file_names([(keys["cell"][i], keys["seed"][i], keys["epoch"][i])
                               for i in rows])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [write_safetensors(meta[i], weights[i]["weights"], out / name)
            for i, name in tqdm(list(zip(rows, names)), desc=f"export {fmt}", unit="row",
                                disable=not progress)]
