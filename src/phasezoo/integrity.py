"""Checksums of the intermediate files, so that a damaged or edited one is named, not used.

Every stage that finishes a file (``train.h5``, ``metrics.parquet``, ``pairs.parquet``,
``phases.parquet``) seals it: ``<file>.sha256`` beside it holds its SHA-256, in the format
``sha256sum -c`` reads. Every stage checks each input against its seal before reading it.
Why: a truncated HDF5 file surfaced as an ``OSError`` traceback deep in h5py, and a value
edited in ``metrics.parquet`` was published without a word. The message says what to do:
delete the file and rerun Snakemake, whose DAG lists every intermediate and rebuilds it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from phasezoo.atomic import write_atomic

SUFFIX = ".sha256"
_CHUNK = 1 << 24
REBUILD = "delete it and rerun snakemake to rebuild it"


class IntegrityError(ValueError):
    """An intermediate file is missing, unsealed, or does not match its seal."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 16 MiB chunks (constant memory for any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def seal_path(path: str | Path) -> Path:
    """Where ``path``'s seal lives."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def seal(path: str | Path) -> Path:
    """Write ``path``'s seal atomically (after the file itself is complete)."""
    path = Path(path)
    line = f"{file_sha256(path)}  {path.name}\n"
    return write_atomic(seal_path(path), lambda tmp: tmp.write_text(line))


def check(path: str | Path) -> Path:
    """``path`` if it exists and matches its seal.

    Raises:
        IntegrityError: naming the file, what is wrong and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"{path}: missing; rerun snakemake to rebuild it")
    sealed = seal_path(path)
    if not sealed.is_file():
        raise IntegrityError(f"{path}: no checksum beside it ({sealed.name}): it was not "
                             f"finished by phasezoo (or is from an older version); {REBUILD}")
    expected = sealed.read_text().split()[:1]
    if expected != [file_sha256(path)]:
        raise IntegrityError(f"{path}: its content does not match {sealed.name} (edited or "
                             f"damaged after it was written); {REBUILD}")
    return path
