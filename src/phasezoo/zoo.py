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
import re
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
from phasezoo.folders import replaceable
from phasezoo.integrity import check, file_sha256
from phasezoo.phases import DIVERGED
from phasezoo.splits import SPLITS_FILE, cell_frame, splits_document
from phasezoo.weights import (build_model, check_architecture, num_values, parse_layout,
                              skeleton)

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
    """Check checksums, the card, then every shard the card names; return the number of rows.

    A zoo is untrusted input (downloaded), so verify passes only what it checked: the card may
    point the ``datasets`` builder at shards listed in ``SHA256SUMS`` and nothing else, and must
    point it at every listed shard; every shard's bytes bound what reading it allocates; every
    row's layout tiles its weights; and the card's row count and read batch are the ones
    ``publish`` would write for these shards.

    Raises:
        VerifyError: naming the first bad file or column.
    """
    zoo_dir = Path(zoo_dir)
    if not zoo_dir.is_dir():
        raise VerifyError(f"{zoo_dir}: no such zoo folder")
    if not (zoo_dir / "SHA256SUMS").exists() and not (zoo_dir / "README.md").exists():
        raise VerifyError(f"{zoo_dir}: not a published zoo (no SHA256SUMS, no README.md card); "
                          f"`phasezoo publish` writes one to zoos/{zoo_dir.name}")
    listed = _verify_checksums(zoo_dir)
    header = _card_header(zoo_dir)
    config = _card_config(header)
    names = _card_shards(config, listed)
    schema, rows, longest, planes = None, 0, 0, {}
    for name in names:
        shard_schema, n, plane, length = _verify_shard(zoo_dir / name, name)
        if schema is not None and shard_schema != schema:
            diff = sorted(set(schema.items()) ^ set(shard_schema.items()))
            raise VerifyError(f"{name}: columns differ from the first shard's: {diff[:3]}")
        if plane:
            planes.setdefault(plane, name)
        if len(planes) > 1:
            raise VerifyError(f"{name}: column 'topo_plane' grids of {sorted(planes)} values "
                              "across shards (one zoo, one grid size)")
        schema, rows, longest = shard_schema, rows + n, max(longest, length)
    _verify_card(header, config, zoo_dir / names[0], rows, longest)
    return rows


def verified_zoo(path_or_id: str | Path) -> Path:
    """The local folder of a zoo (a folder, or a hub id downloaded), verified (:func:`verify`).

    Why every reader goes through here (``benchmark``, ``studies``, ``diagnose``): a zoo is
    untrusted input, and ``datasets`` reads whatever its card points at; a damaged or crafted
    zoo is named in one line before a row is read. A hub id is downloaded with
    ``snapshot_download`` into a folder of real files (:func:`hub_folder`), the folder verified.

    Raises:
        VerifyError: naming the zoo and what is wrong.
    """
    local = Path(path_or_id)
    if local.is_dir():
        verify(local)
        return local
    if local.exists() or local.is_absolute() or len(local.parts) != 2:
        raise VerifyError(f"{path_or_id}: no such zoo folder (nor a hub id 'owner/name')")
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(str(path_or_id), repo_type="dataset",
                                        local_dir=hub_folder(str(path_or_id))))
    except Exception as err:  # no such repository, no network, ...: one line, not a traceback
        raise VerifyError(f"{path_or_id}: no such zoo folder, and no hub dataset of that id "
                          f"could be downloaded ({type(err).__name__})") from None
    verify(folder)
    return folder


def hub_folder(repo_id: str) -> Path:
    """Where :func:`verified_zoo` downloads a hub zoo: real files (no links into the hub's blob
    cache, which :func:`verify` would refuse as leading outside the zoo)."""
    from huggingface_hub.constants import HF_HOME

    return Path(HF_HOME) / "phasezoo-zoos" / repo_id.replace("/", "--")


# The card keys of the one config publish writes; any other (``data_dir``, builder options) is
# refused, since datasets would act on it unchecked.
CARD_CONFIG_KEYS = ("config_name", "default", "data_files", "batch_size", "features")
MAX_SUMS_BYTES = 16 << 20  # a downloaded SHA256SUMS larger than this is refused unread
_SUMS_LINE = re.compile(r"[0-9a-f]{64}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # hf://, https://, C: ...


def _card_header(zoo_dir: Path) -> dict[str, Any]:
    """The card's YAML header, its problems as one VerifyError line."""
    card = zoo_dir / "README.md"
    if not card.is_file():
        raise VerifyError("README.md: missing (the card that points datasets at the shards)")
    try:
        return read_card_header(card)
    except ValueError as e:
        raise VerifyError(str(e)) from None


def _card_config(header: dict[str, Any]) -> dict[str, Any]:
    """The card's one config, with only the keys publish writes."""
    configs = header.get("configs")
    if not (isinstance(configs, list) and len(configs) == 1 and isinstance(configs[0], dict)):
        raise VerifyError("README.md: the card must declare exactly one config under "
                          "'configs' (publish writes one)")
    config = configs[0]
    extra = sorted(set(map(str, config)) - set(CARD_CONFIG_KEYS))
    if extra or config.get("config_name") != "default":
        raise VerifyError(f"README.md: config key '{extra[0]}' is not one publish writes "
                          f"({', '.join(CARD_CONFIG_KEYS)})" if extra else
                          "README.md: the config must be named 'default'")
    return config


def _card_shards(config: dict[str, Any], listed: Mapping[str, str]) -> list[str]:
    """The shards the card's ``data_files`` names, each a listed ``data/<name>.h5``; every listed
    file under ``data/`` is among them, so verify checks exactly what ``datasets`` reads."""
    files = config.get("data_files")
    ok = (isinstance(files, list) and len(files) == 1 and isinstance(files[0], dict)
          and set(files[0]) == {"split", "path"} and files[0]["split"] == "train"
          and isinstance(files[0]["path"], list) and files[0]["path"])
    if not ok:
        raise VerifyError("README.md: data_files must be one 'train' split with a list of "
                          "shard paths (as publish writes it)")
    names = files[0]["path"]
    for name in names:
        problem = _data_file_problem(name, listed)
        if problem:
            raise VerifyError(f"README.md: data_files entry {str(name)[:200]!r} {problem}")
    if len(set(names)) != len(names):
        raise VerifyError("README.md: data_files names a shard twice")
    unread = sorted(set(n for n in listed if n.startswith("data/")) - set(names))
    if unread:
        raise VerifyError(f"{unread[0]}: listed in SHA256SUMS but not in the card's data_files "
                          "(a shard datasets would not load, or a file that is not a shard)")
    return names


def _data_file_problem(name: Any, listed: Mapping[str, str]) -> str | None:
    """Why ``name`` may not be a ``data_files`` entry (None if it may): it must be a shard of
    this zoo by its literal name, never a URL, a glob, a hidden or an unlisted file."""
    if not isinstance(name, str):
        return "is not a path"
    if _URL.match(name):
        return "is a URL or drive, not a file inside the zoo"
    problem = _path_problem(name)
    if problem:
        return problem
    if any(c in name for c in "*?[]{}"):
        return "is a glob pattern (the card names every shard)"
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "data" or parts[1].startswith(".") \
            or not parts[1].endswith(".h5"):
        return "is not a visible shard data/<name>.h5"
    if name not in listed:
        return "is not listed in SHA256SUMS (data verify never checked)"
    return None


def _path_problem(name: str) -> str | None:
    """Why ``name`` is not a plain relative path inside a folder (None if it is), decided from
    the text alone, before the file system is touched."""
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name:
        return "is not a plain relative path (empty, a control character or a backslash)"
    if name.startswith("/") or _URL.match(name):
        return "is an absolute path (outside the zoo)"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "is not a plain relative path inside the zoo ('..', '.' or an empty part)"
    return None


def _verify_card(header: dict[str, Any], config: dict[str, Any], shard: Path, rows: int,
                 longest: int) -> None:
    """The card declares every column of the shards with its feature, ``weights`` as a
    ``large_list`` (the ``datasets`` builder drops a column the card leaves out, and a plain
    ``list`` overflows Arrow's 32-bit offsets on full-size rows), the rows verify counted
    (``datasets`` trusts that count) and the read batch publish derives from the longest row
    (a larger one passes Arrow's limits)."""
    declared = {f.get("name"): f for f in config.get("features") or [] if isinstance(f, dict)}
    actual = {f["name"]: f for f in shard_features(shard)}
    if declared != actual or len(declared) != len(config.get("features") or []):
        diff = sorted(set(declared) ^ set(actual)) or sorted(
            n for n in actual if declared[n] != actual[n]) or ["a column declared twice"]
        raise VerifyError(f"README.md: the card's features do not match the shards' columns "
                          f"(first differences: {diff[:3]}); re-publish the zoo")
    batch, expected = config.get("batch_size"), read_batch_size(longest)
    if batch != expected or isinstance(batch, bool):
        raise VerifyError(f"README.md: batch_size is {batch!r}; rows of {longest:,} values "
                          f"are read {expected} at a time (what publish writes)")
    info = header.get("dataset_info")
    splits = info.get("splits") if isinstance(info, dict) else None
    ok = (isinstance(splits, list) and len(splits) == 1 and isinstance(splits[0], dict)
          and splits[0].get("name") == "train" and info.get("config_name") == "default"
          and info.get("features") == config.get("features"))
    if not ok:
        raise VerifyError("README.md: dataset_info must describe the 'default' config's one "
                          "'train' split with the config's features (as publish writes it)")
    count = splits[0].get("num_examples")
    if count != rows or isinstance(count, bool):
        raise VerifyError(f"README.md: dataset_info declares {count!r} rows (num_examples), "
                          f"the shards hold {rows}")


def _verify_checksums(zoo_dir: Path) -> dict[str, str]:
    """Every listed file matches its digest, and every file is listed; returns the listing.
    Every name is checked from its text before the file system is touched (no ``..``, no
    absolute path: a listing is not a way to ask whether a file exists elsewhere), then that it
    does not lead outside the zoo through a link. Hidden entries (a hub download's
    ``.gitattributes`` and ``.cache``, Snakemake's ``.snakemake_timestamp``) are not part of a
    zoo and are left alone."""
    listed = _read_sums(zoo_dir / "SHA256SUMS")
    root = zoo_dir.resolve()
    for name, digest in listed.items():
        path = zoo_dir / name
        if not path.resolve().is_relative_to(root):
            raise VerifyError(f"{name}: listed in SHA256SUMS but leads outside the zoo (a link)")
        if not path.is_file():
            raise VerifyError(f"{name}: listed in SHA256SUMS but missing")
        if file_sha256(path) != digest:
            raise VerifyError(f"{name}: SHA-256 mismatch (corrupted or modified)")
    for folder, dirs, files in os.walk(zoo_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            name = (Path(folder) / file).relative_to(zoo_dir).as_posix()
            if not file.startswith(".") and name not in listed and name != "SHA256SUMS":
                raise VerifyError(f"{name}: not listed in SHA256SUMS (a file that is not part "
                                  "of the published zoo)")
    return listed


def _read_sums(sums: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {name: digest}, every line ``<64 hex>  <plain relative path>``."""
    if not sums.is_file():
        raise VerifyError(f"{sums}: missing")
    if sums.stat().st_size > MAX_SUMS_BYTES:
        raise VerifyError(f"SHA256SUMS: more than {MAX_SUMS_BYTES:,} bytes; not a zoo's listing")
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise VerifyError("SHA256SUMS: not UTF-8 text") from None
    listed: dict[str, str] = {}
    for i, line in enumerate(lines, 1):
        digest, _, name = line.partition("  ")
        if not _SUMS_LINE.fullmatch(digest):
            raise VerifyError(f"SHA256SUMS: line {i} is not '<sha256>  <path>'")
        problem = _path_problem(name) or ("is listed twice" if name in listed else None)
        if problem:
            raise VerifyError(f"SHA256SUMS: line {i}: {name[:200]!r} {problem}")
        listed[name] = digest
    return listed


def _verify_shard(shard: Path, name: str) -> tuple[dict[str, str], int, int, int]:
    """Schema of one shard (column → dtype), its row count, its ``topo_plane`` size (0: none)
    and its row length; raises on the first bad column."""
    try:
        f = h5py.File(shard, "r")
    except OSError as e:
        raise VerifyError(f"{name}: not a readable HDF5 file ({e})") from e
    with f:
        _verify_storage(f, name)
        missing = [c for c in REQUIRED_COLUMNS if c not in f]
        if missing:
            raise VerifyError(f"{name}: missing column '{missing[0]}'")
        n = f["model_id"].shape[0]
        schema = {}
        for col, ds in f.items():
            if ds.shape[:1] != (n,):
                raise VerifyError(f"{name}: column '{col}' does not have {n} rows")
            schema[col] = str(h5py.check_vlen_dtype(ds.dtype) or ds.dtype)
        layouts = _row_layouts(f, name, n)
        length = _verify_weights(f, name, layouts)
        _verify_layer_lists(f, name, layouts)
        plane = _verify_planes(f, name, n)
    return schema, n, plane, length


def _verify_storage(f: h5py.File, name: str) -> None:
    """Every entry of a shard is a dataset stored as publish stores it: a hard link (an external
    link opens another file), contiguous and unfiltered (a compressed dataset can claim
    gigabytes in a few kilobytes), neither virtual nor in external files (data read from
    elsewhere), and every byte on disk. So a shard's size bounds what reading it allocates."""
    for col in f:
        if not isinstance(f.get(col, getlink=True), h5py.HardLink) \
                or not isinstance(f[col], h5py.Dataset):
            raise VerifyError(f"{name}: '{col}' is not a dataset of the shard (a group or a "
                              "link)")
        ds = f[col]
        if ds.chunks is not None or ds.is_virtual or ds.external:
            raise VerifyError(f"{name}: column '{col}' is chunked, compressed, virtual or "
                              "external; publish writes every column contiguous")
        size = _disk_bytes(ds)
        if ds.id.get_storage_size() != size:
            raise VerifyError(f"{name}: column '{col}' claims {size:,} bytes but stores "
                              f"{ds.id.get_storage_size():,}")


def _disk_bytes(ds: h5py.Dataset) -> int:
    """What a fully written contiguous dataset stores: its elements' size, 16 bytes for a
    variable-length element (a heap reference; the values live in the file's heap)."""
    string = h5py.check_string_dtype(ds.dtype)
    vlen = h5py.check_vlen_dtype(ds.dtype) is not None or (string is not None
                                                           and string.length is None)
    return ds.size * (16 if vlen else ds.dtype.itemsize)


def _row_layouts(f: h5py.File, name: str, n: int) -> list[dict[str, Any]]:
    """Every row's ``layout``, parsed and checked (:func:`phasezoo.weights.parse_layout`) once
    per distinct text, and its architecture built on ``meta`` against its entries
    (:func:`phasezoo.weights.check_architecture`): the rows of a cell share one."""
    if not h5py.check_string_dtype(f["layout"].dtype):
        raise VerifyError(f"{name}: column 'layout' is not a string column")
    parsed: dict[bytes, dict[str, Any]] = {}
    out = []
    for i in range(n):
        text = f["layout"][i]
        if text not in parsed:
            try:
                parsed[text] = parse_layout(text)
                check_architecture(parsed[text])
            except ValueError as e:
                raise VerifyError(f"{name}: column 'layout' row {i}: {e}") from None
        out.append(parsed[text])
    return out


def _verify_layer_lists(f: h5py.File, name: str, layouts: list[dict[str, Any]]) -> None:
    """Every per-layer list column has one value per layer named in the row's layout."""
    lists = [c for c in f if c.startswith("layer_")]
    for col in lists:
        if h5py.check_vlen_dtype(f[col].dtype) != np.float64:
            raise VerifyError(f"{name}: column '{col}' is not variable-length float64")
    for i, layout in enumerate(layouts):
        layers = layout.get("htsr_layers", [])
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


def _verify_weights(f: h5py.File, name: str, layouts: list[dict[str, Any]]) -> int:
    """``weights`` is rows × values float32 and every row's layout needs exactly that many values
    (checked from the shape: no weights are read); returns the row length."""
    ds = f["weights"]
    if ds.dtype != np.float32 or ds.ndim != 2:
        raise VerifyError(f"{name}: column 'weights' is not a 2-D float32 dataset (rows × values)")
    for i, layout in enumerate(layouts):
        if ds.shape[1] != num_values(layout["entries"]):
            raise VerifyError(f"{name}: column 'weights' row {i} does not match its 'layout' "
                              f"({ds.shape[1]:,} values, the layout needs "
                              f"{num_values(layout['entries']):,})")
    return int(ds.shape[1])
