"""Checking a published zoo before anything reads it: ``phasezoo verify``, and the first step of
every command that reads a zoo (:func:`verified_zoo`).

Why its own module: a zoo is untrusted input (shared, downloaded), and verifying it is a
different job from writing one (:mod:`phasezoo.zoo`). :func:`verify` passes only what it checked:
the checksums (names refused from their text before the file system is asked), the card's
``data_files`` (only listed shards inside the zoo, and all of them), its row count and read
batch, every shard's columns, storage and layouts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import pandas as pd

from phasezoo.hub_card import read_batch_size, shard_features
from phasezoo.integrity import file_sha256
from phasezoo.weights import check_architecture, num_values, parse_layout
from phasezoo.zoo import REQUIRED_COLUMNS
from phasezoo.zoo_folder import hub_folder, read_card_header


class VerifyError(ValueError):
    """A published zoo that fails a check; the message names the file or column."""


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
    config, by_split = _card_config(header)
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
    if by_split:
        _verify_split_configs(zoo_dir, config, by_split, names, listed)
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


def _card_config(header: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The card's ``default`` config, first and with only the keys publish writes, and the
    configs after it (one per shipped split, checked by :func:`_verify_split_configs`)."""
    configs = header.get("configs")
    if not (isinstance(configs, list) and configs and isinstance(configs[0], dict)):
        raise VerifyError("README.md: the card must declare its configs under 'configs', "
                          "'default' first (as publish writes them)")
    config = configs[0]
    extra = sorted(set(map(str, config)) - set(CARD_CONFIG_KEYS))
    if extra or config.get("config_name") != "default":
        raise VerifyError(f"README.md: config key '{extra[0]}' is not one publish writes "
                          f"({', '.join(CARD_CONFIG_KEYS)})" if extra else
                          "README.md: the first config must be named 'default'")
    return config, configs[1:]


def _verify_split_configs(zoo_dir: Path, default: dict[str, Any], declared: list[Any],
                          names: list[str], listed: Mapping[str, str]) -> None:
    """The card's configs after ``default`` are exactly the split configs publish derives from
    the zoo's checked ``splits.json`` and its shards' cells (a shard per cell), with the default
    config's features and read batch: no set the shipped splits do not name, no shard of
    another cell, nothing ``datasets`` would act on unchecked."""
    from phasezoo.split_configs import split_configs
    from phasezoo.splits import SPLITS_FILE, read_splits

    if SPLITS_FILE not in listed:
        raise VerifyError(f"README.md: declares split configs but the zoo ships no checked "
                          f"{SPLITS_FILE}")
    cells = _shard_cells(zoo_dir, names)
    shard_of = dict(zip(cells["cell"], names))
    try:
        shipped = read_splits(zoo_dir / SPLITS_FILE, cells)
        expected = [{**c, "batch_size": default.get("batch_size"),
                     "features": default.get("features")}
                    for c in split_configs(shipped.shipped, shard_of)]
    except (ValueError, KeyError) as e:
        raise VerifyError(f"{SPLITS_FILE}: {e}") from None
    for i, config in enumerate(declared):
        want = expected[i] if i < len(expected) else None
        if config != want:
            name = config.get("config_name") if isinstance(config, dict) else None
            raise VerifyError(f"README.md: config {i + 1} ({str(name)[:100]!r}) is not the split "
                              f"config publish derives from {SPLITS_FILE} and the shards' cells")
    if len(declared) != len(expected):
        raise VerifyError(f"README.md: {len(declared)} split configs, {SPLITS_FILE} ships "
                          f"{len(expected)}")


def _shard_cells(zoo_dir: Path, names: list[str]) -> pd.DataFrame:
    """Each verified shard's cell, phase and load value (``cell``, ``phase``, ``load_value``,
    in ``names`` order): one cell per shard, one shard per cell, which makes a split's rows its
    cells' shards."""
    rows: list[dict[str, Any]] = []
    for name in names:
        with h5py.File(zoo_dir / name, "r") as f:
            if not all(h5py.check_string_dtype(f[c].dtype) for c in ("cell", "phase")):
                raise VerifyError(f"{name}: columns 'cell' and 'phase' must be string columns")
            cells = set(f["cell"].asstr()[:])
            if len(cells) != 1 or cells & {r["cell"] for r in rows}:
                raise VerifyError(f"{name}: holds cells {sorted(cells)[:3]}; split configs need "
                                  "one shard per cell")
            rows.append({"cell": cells.pop(), "phase": f["phase"].asstr()[0],
                         "load_value": float(f["load_value"][0])})
    return pd.DataFrame(rows)


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
