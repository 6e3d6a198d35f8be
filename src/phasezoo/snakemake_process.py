"""Snakemake as a child of this installation: run by this interpreter, with this interpreter's
scripts folder on PATH, so the workflow's jobs call the ``phasezoo`` installed here.

Why a module of its own: ``phasezoo run`` (:mod:`phasezoo.launch`) and the stale-lock removal
before it (:mod:`phasezoo.unlock`) both start Snakemake this way, and launch calls unlock:
kept in launch, these made the two modules import each other.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def snakemake_command(args: list[str]) -> list[str]:
    """Snakemake run by this interpreter, so it and its jobs use the phasezoo installed here."""
    return [sys.executable, "-m", "snakemake", *args]


def job_environment() -> dict[str, str]:
    """The environment with this interpreter's scripts folder on PATH: the rules' shell lines
    call ``phasezoo``, which a venv that was not activated leaves off PATH (every job would
    exit 127)."""
    env = dict(os.environ)
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")]) if env.get("PATH") else scripts
    return env
