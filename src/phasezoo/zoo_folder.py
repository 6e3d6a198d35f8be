"""A published zoo's folder as its readers first meet it, read as untrusted input: where a hub
id's verified download lives (:func:`hub_folder`) and the YAML header of its card, its size
bounded before it is read (:func:`read_card_header`).

Why a module of its own: the card writer (:mod:`phasezoo.card`), the verifier, the provenance
of reports, the output-folder checks (:mod:`phasezoo.folders`) and the WSL readers all read
these, and none of them may import the card writer for it (the card writer imports the config,
which imports the folder checks: an import circle). Imports no other phasezoo module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# A downloaded card larger than this is refused before it is read (a 10,000-cell zoo's is ~1 MB).
MAX_CARD_BYTES = 16 << 20


def hub_folder(repo_id: str) -> Path:
    """Where :func:`verified_zoo` downloads a hub zoo: real files (no links into the hub's blob
    cache, which :func:`verify` would refuse as leading outside the zoo)."""
    from huggingface_hub.constants import HF_HOME

    return Path(HF_HOME) / "phasezoo-zoos" / repo_id.replace("/", "--")


def read_card_header(card: Path) -> dict[str, Any]:
    """The YAML front matter of a card (``{}`` if it has none), read as untrusted input: its
    size bounded before it is read, and what is not UTF-8 YAML mapping named in one line.

    Raises:
        ValueError: naming the card and, for broken YAML, the line.
    """
    size = card.stat().st_size
    if size > MAX_CARD_BYTES:
        raise ValueError(f"{card.name}: {size:,} bytes, more than a card may hold "
                         f"({MAX_CARD_BYTES:,})")
    try:
        text = card.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{card.name}: not UTF-8 text (byte {e.start})") from None
    if not text.startswith("---\n"):
        return {}
    try:
        header = yaml.safe_load(text.split("---\n", 2)[1]) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 2}: " if mark is not None else ""  # + the opening ---
        raise ValueError(f"{card.name}: {line}the YAML header is not valid YAML "
                         f"({getattr(e, 'problem', None) or type(e).__name__})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{card.name}: the YAML header is a {type(header).__name__}, "
                         "not a mapping")
    return header
