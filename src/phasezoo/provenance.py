"""Which phasezoo built a zoo or a report, and from which config: version, commit, config digest.

Why: a card, a ``benchmark.json`` or a report that does not name the code and the settings that
produced it cannot be reproduced or compared ("which phasezoo labelled this zoo?"). Recorded in
the card's ``phasezoo`` header block (:func:`build_provenance`) and in every report's JSON
(:func:`run_provenance`); ``phasezoo --version`` prints the same.

The commit is read only where phasezoo runs from a git checkout of its own source: ``git`` is
run with an argument list (no shell), with a timeout, and only trusted when the package's own
``__init__.py`` is tracked by that repository (an installed copy inside someone else's repository, e.g. a
virtual environment in a project folder, would otherwise report that project's commit). Any
failure gives ``unknown``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from phasezoo.zoo_folder import hub_folder, read_card_header

UNKNOWN = "unknown"
GIT_TIMEOUT_S = 10
DIGEST_CHARS = 16  # as the cells' fingerprints (phasezoo.config.Cell.fingerprint)


def version() -> str:
    """The installed phasezoo's version (its package metadata), ``unknown`` if not installed."""
    try:
        return metadata.version("phasezoo")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def _git(*args: str) -> str | None:
    """``git args`` run in this package's folder: its output, or None on any failure."""
    try:
        done = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def commit() -> str:
    """The git commit of the phasezoo source being run, ``+dirty`` when its tracked files differ
    from that commit; ``unknown`` outside a checkout of phasezoo (see the module)."""
    if _git("ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return UNKNOWN
    head = _git("rev-parse", "HEAD")
    if not head:
        return UNKNOWN
    changes = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return f"{head}+dirty" if changes else head


def version_line() -> str:
    """What ``phasezoo --version`` prints."""
    return f"phasezoo {version()} (commit {commit()})"


def run_provenance() -> dict[str, str]:
    """The phasezoo that is running: version and commit (every report's JSON holds it)."""
    return {"phasezoo_version": version(), "commit": commit()}


def config_digest(zoo: Any, sections: Iterable[str]) -> str:
    """SHA-256 (first 16 hex digits) of the zoo's name and its typed ``sections`` as the validated
    YAML has them (:meth:`phasezoo.config.ZooSpec.as_dict`), keys sorted: equal digests, equal
    settings, whatever the config file's layout, comments or other zoos."""
    blob = json.dumps({"zoo": zoo.name, **zoo.as_dict(sections)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:DIGEST_CHARS]


# The zoo's sections that decide what a published zoo holds: the grid (phasezoo.cli.GRID) and
# the sections the publish stage declares (phasezoo.stages.STAGES["publish"]); a test holds the two
# equal. Benchmark, studies and resources settings do not change a zoo's content.
ZOO_CONTENT_SECTIONS = ("dataset", "model", "temperature", "load", "seeds", "train",
                        "description", "metrics", "phases")


def build_provenance(zoo: Any) -> dict[str, str]:
    """What a published zoo's card records about its build: phasezoo version, commit and the
    digest of the zoo's content sections (:data:`ZOO_CONTENT_SECTIONS`)."""
    return {**run_provenance(), "config_digest": config_digest(zoo, ZOO_CONTENT_SECTIONS)}


def provenance_line(record: dict[str, Any] | None, what: str = "Written") -> str:
    """One line of a report naming a provenance record (``not recorded`` for none)."""
    if not record:
        return f"{what} by: not recorded."
    digest = f", config digest {record['config_digest']}" if record.get("config_digest") else ""
    return (f"{what} by phasezoo {record.get('phasezoo_version', UNKNOWN)} (commit "
            f"{record.get('commit', UNKNOWN)}{digest}).")


def zoo_build(path_or_id: str | Path) -> dict[str, Any]:
    """The ``phasezoo`` block of a published zoo's card: which phasezoo built it, from which
    settings (``{}`` for a zoo published before cards held it). A hub id is read from its
    verified download (:func:`phasezoo.zoo_folder.hub_folder`), as the readers read it."""
    local = Path(path_or_id)
    card = (local if local.is_dir() else hub_folder(str(path_or_id))) / "README.md"
    block = read_card_header(card).get("phasezoo") if card.is_file() else None
    return {str(k): v for k, v in block.items()} if isinstance(block, dict) else {}
