"""Writing a report's files (JSON, markdown, figure) so that a killed job leaves no complete-looking
result: each file goes to a temporary name in the same folder and is renamed into place
(:func:`phasezoo.atomic.write_atomic`), and the JSON — the file the workflow and users read as
"done" — is renamed last, after any stale copy of it is removed first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from phasezoo.atomic import write_atomic


def write_report_files(out_dir: str | Path, stem: str, result: dict[str, Any], markdown: str,
                       plot: Callable[[dict[str, Any], Path], object]) -> tuple[Path, Path]:
    """``<stem>.png``, ``<stem>.md`` and then ``<stem>.json`` in ``out_dir``; returns (json, md).

    A JSON from an earlier run is removed before anything is written, so its presence always
    means that this run's three files are complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md, png = (out / f"{stem}{suffix}" for suffix in (".json", ".md", ".png"))
    js.unlink(missing_ok=True)
    write_atomic(png, lambda tmp: plot(result, tmp))
    write_atomic(md, lambda tmp: tmp.write_text(markdown))
    write_atomic(js, lambda tmp: tmp.write_text(json.dumps(result, indent=1, default=float)))
    return js, md
