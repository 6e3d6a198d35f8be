"""Where a config may point a dataset at local files: a relative path under ``data_root``.

Why a rule: configs are shared and downloaded, and a ``text`` source is read, trained on and
published in the weights of every model, so ``source: /etc/passwd`` (or ``../../.ssh``) would
publish a file the person running the config never meant to share. Files under ``data_root``
are the ones its owner put there as data. The rule is lexical (an absolute path or a ``..``
part is refused); a symlink placed under ``data_root`` is followed, since placing it is that
owner's choice, and every file read is named in the dataset card (path, size, SHA-256).

Torch-free, so config validation (:mod:`phasezoo.config_checks`) and the dataset itself
(:mod:`phasezoo.data.corpora`, for ``phasezoo fetch --options``) apply the same rule.
"""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

HUB_PREFIX = "hf:"  # hf:<id>: a hub dataset streamed through ``datasets``
NAMED_SOURCES = ("openwebtext", "pydoc")  # the hub's OpenWebText; CPython's pydoc topics


def is_local(source: str) -> bool:
    """Whether a ``text`` source names local files (not a hub dataset or the pydoc topics)."""
    return source not in NAMED_SOURCES and not source.startswith(HUB_PREFIX)


def source_problem(source: object) -> str | None:
    """What is wrong with ``source`` as a ``text`` source (None if nothing): it must be a
    non-empty string, and a local one a path relative to ``data_root`` with no ``..`` part and
    no control character."""
    if not isinstance(source, str) or not source:
        return f"{source!r} is not a source ('openwebtext', 'pydoc', 'hf:<id>' or a path)"
    if not is_local(source):
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in source):
        return f"{source!r}: a control character in a path is never intended"
    posix, windows = PurePosixPath(source), PureWindowsPath(source)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in windows.parts:
        return (f"{source!r} is outside data_root: a local source is a path relative to "
                "data_root without '..' (put or link the files under data_root)")
    return None
