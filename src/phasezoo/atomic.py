"""Files that appear complete or not at all: the one atomic writer of the package."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Create ``path`` by ``write(tmp)`` to a unique temporary name in the same folder, then
    ``os.replace`` it into place.

    Why: every file a stage writes is read back as complete, by later jobs and by jobs running
    beside this one; a job killed mid-write must leave no file at ``path``, and two jobs
    writing the same path must not interleave. The temporary name keeps ``path``'s suffix
    (``np.savez`` appends ``.npz`` to names without it) and is removed if ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
