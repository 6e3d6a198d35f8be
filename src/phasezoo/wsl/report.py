"""Writing a report's files (JSON, markdown, figure) so that a killed job leaves no complete-looking
result: each file goes to a temporary name in the same folder and is renamed into place
(:func:`phasezoo.atomic.write_atomic`), and the JSON — the file the workflow and users read as
"done" — is renamed last, after any stale copy of it is removed first.

The JSON is strict (RFC 8259): a score that does not exist (NaN, an infinity) is written as
``null`` (:func:`strict_json`), because Python's ``NaN`` token breaks every other reader
(``jq``, JavaScript, Go, Rust's serde)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from phasezoo.atomic import write_atomic


def write_report_files(out_dir: str | Path, stem: str, result: dict[str, Any], markdown: str,
                       plot: Callable[[dict[str, Any], Path], object]) -> tuple[Path, Path]:
    """``<stem>.png``, ``<stem>.md`` and then ``<stem>.json`` in ``out_dir``; returns (json, md).

    A JSON from an earlier run is removed before anything is written, so its presence always
    means that this run's three files are complete. The JSON gets ``provenance`` (the phasezoo
    version and commit writing it) and the markdown a line naming it, and the zoo's build
    (``zoo_build`` of the result, when the command recorded it).
    """
    from phasezoo.provenance import run_provenance

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md, png = (out / f"{stem}{suffix}" for suffix in (".json", ".md", ".png"))
    js.unlink(missing_ok=True)
    result = {**result, "provenance": run_provenance()}  # which phasezoo wrote the report
    markdown = with_footer(markdown, result)
    write_atomic(png, lambda tmp: plot(result, tmp))
    write_atomic(md, lambda tmp: tmp.write_text(markdown))
    write_atomic(js, lambda tmp: tmp.write_text(strict_json(result)))
    return js, md


def with_footer(markdown: str, result: dict[str, Any]) -> str:
    """A report's markdown ending with the lines that name the phasezoo that wrote it
    (``provenance``) and, when recorded, the one that built the zoo it read (``zoo_build``):
    a report read back from its JSON renders the same with this."""
    from phasezoo.provenance import provenance_line

    footer = [provenance_line(result.get("provenance"))]
    if "zoo_build" in result:
        footer.append(provenance_line(result["zoo_build"], "Zoo built"))
    return markdown.rstrip("\n") + "\n\n" + "  \n".join(footer) + "\n"


def strict_json(value: Any) -> str:
    """``value`` as strict JSON text: NaN and ±infinity (Python or NumPy floats) become null.

    Raises:
        TypeError: for a value JSON cannot hold (an object other than NumPy scalars).
    """
    return json.dumps(_finite(value), indent=1, allow_nan=False)


def _finite(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into Python ones and every non-finite
    float into None, through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist"):  # a NumPy scalar or array
        return _finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
