"""The folders phasezoo writes, and which of them it may delete.

Two rules keep a config from deleting data that is not its own:

* :func:`check_folders` (run by config validation): ``results_dir``, ``zoos_dir`` and
  ``data_root`` are three distinct folders, none inside another, and none of them is the
  working folder or one of its parents. ``zoos_dir: results`` (equal to ``results_dir``) made
  publishing a zoo replace the zoo's trained cells; ``zoos_dir: .`` made a zoo named ``config``
  replace the repository's ``config/``.
* :func:`replaceable` (run by :func:`phasezoo.zoo.publish_cells` before it moves or deletes a
  folder): only a folder that holds nothing but a zoo's own files is ever replaced or removed,
  whatever the config says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import yaml

from phasezoo.zoo_folder import read_card_header

WORKFLOW_FOLDERS = ("results_dir", "zoos_dir", "data_root")
# What a published (or half-built) zoo folder holds: the card, the checksums, the benchmark's
# splits and the shards; hidden entries (a hub download's .cache, .gitattributes) are ignored.
ZOO_FILES = frozenset({"README.md", "SHA256SUMS", "splits.json"})
# Suffixes of a shard and of the temporary files phasezoo.atomic writes while building one.
SHARD_SUFFIXES = (".h5", ".tmp.h5")
# Most entries a folder may hold and still be looked at as a zoo (a zoo has one shard per cell,
# at most max_cells); a folder with more is refused without walking all of it.
MAX_ENTRIES = 200_000


class FolderError(ValueError):
    """A folder phasezoo refuses to replace or remove; the message names it."""


def check_folders(raw: dict[str, Any], cwd: Path | None = None) -> None:
    """Refuse workflow folders that overlap each other or hold the working folder.

    Raises:
        FolderError: naming the two keys (or the key and the working folder); config
            validation turns it into its ConfigError line.
    """
    cwd = (cwd or Path.cwd()).resolve()
    folders = {key: _resolved(raw[key], cwd) for key in WORKFLOW_FOLDERS}
    for key, path in folders.items():
        if path == cwd or path in cwd.parents:
            raise FolderError(f"{key}: {raw[key]!r} is the working folder {cwd} or holds it; "
                              "phasezoo replaces what it writes there (use a folder of its own, "
                              "e.g. 'results', 'zoos', 'data')")
    keys = list(folders)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if _overlap(folders[a], folders[b]):
                raise FolderError(f"{a} and {b}: {raw[a]!r} and {raw[b]!r} overlap (the same "
                                  "folder, or one inside the other); give each its own folder")


def _resolved(folder: str, cwd: Path) -> Path:
    """``folder`` as an absolute path, relative ones under ``cwd``, links and ``..`` resolved."""
    path = Path(os.path.expanduser(folder))
    return (path if path.is_absolute() else cwd / path).resolve()


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def replaceable(folder: Path, card_required: bool = True) -> None:
    """Check that ``folder`` may be replaced or removed: it does not exist, or it is a link-free
    folder whose files are only a zoo's (the card, checksums, ``splits.json``, shards under
    ``data/``) and, when ``card_required``, whose card says phasezoo wrote it.

    Why not trust the config: a folder name is the config's choice, and what sits at it may be
    anything (a repository's ``config/``, a results folder, a user's data).

    Raises:
        FolderError: naming the folder and the first entry that is not a zoo's.
    """
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir():
        raise FolderError(f"{folder}: exists and is not a folder phasezoo wrote (a file or a "
                          "link); not replacing it. Move it away or choose another zoos_dir")
    for path in _entries(folder):
        stray = _stray(path, folder)
        if stray:
            raise FolderError(f"{folder}: holds {stray}, which is not part of a phasezoo zoo; "
                              "not replacing the folder. Move it away or choose another zoos_dir")
    if card_required and not _phasezoo_card(folder / "README.md"):
        raise FolderError(f"{folder}: has no phasezoo card (README.md tagged 'phasezoo'); not "
                          "replacing it. Move it away or choose another zoos_dir")


def _entries(folder: Path) -> Iterator[Path]:
    """Every non-hidden entry under ``folder`` (hidden ones are not descended into)."""
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in dirs + [f for f in files if not f.startswith(".")]:
            count += 1
            if count > MAX_ENTRIES:
                raise FolderError(f"{folder}: more than {MAX_ENTRIES:,} entries; not a zoo "
                                  "phasezoo wrote, not replacing it")
            yield Path(root) / name


def _stray(path: Path, folder: Path) -> str | None:
    """``path``'s name relative to ``folder`` if a zoo would not hold it, else None."""
    rel = path.relative_to(folder)
    name = rel.as_posix()
    if path.is_symlink():
        return f"{name} (a link)"
    if rel.parts == ("data",) and path.is_dir():
        return None
    if len(rel.parts) == 1 and rel.name in ZOO_FILES and path.is_file():
        return None
    if len(rel.parts) == 2 and rel.parts[0] == "data" and path.is_file() \
            and rel.name.endswith(SHARD_SUFFIXES):
        return None
    return name


def _phasezoo_card(card: Path) -> bool:
    """Whether ``card`` is a card phasezoo wrote: a YAML header whose tags include 'phasezoo'."""
    if not card.is_file():
        return False
    try:
        header = read_card_header(card)
    except (ValueError, OSError, yaml.YAMLError):  # unreadable or broken YAML: not ours to vouch for
        return False
    return isinstance(header, dict) and "phasezoo" in (header.get("tags") or [])
