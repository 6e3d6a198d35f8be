"""Remove a killed Snakemake run's stale lock, but only when no Snakemake runs in its folder.

After a SIGKILL or a power loss, Snakemake's lock in ``FOLDER/.snakemake/locks`` stays behind
and every later run stops with a LockException. ``snakemake --unlock`` removes it, but would
also remove the lock of a run that is still going; :func:`unlock_stale` first looks for a live
Snakemake process whose working directory is the folder (Linux: /proc) and leaves the lock if
it finds one. ``phasezoo run`` calls it before every run; ``workflow/scripts/unlock.py`` (``make
unlock``) on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phasezoo.snakemake_process import job_environment, snakemake_command


def snakemake_pids(folder: Path) -> list[int]:
    """Live Snakemake processes (``snakemake …`` or ``python -m snakemake …``) in ``folder``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue  # gone, or not ours to read
        names = [Path(a.decode(errors="replace")).name for a in argv[:3]]
        is_snakemake = names[:1] == ["snakemake"] or "snakemake" in names[1:3]
        if is_snakemake and int(proc.name) != os.getpid() and cwd == folder:
            found.append(int(proc.name))
    return found


def unlock_stale(folder: Path, args: list[str]) -> int:
    """Remove ``folder``'s stale lock; ``args``: the run's Snakemake arguments (checked configs:
    :func:`phasezoo.launch.checked_arguments`), with which the workflow is parsed to unlock.

    Returns:
        0 unlocked or nothing to unlock, 1 a Snakemake process holds the folder (or no /proc
        to tell).

    Raises:
        ValueError: Snakemake could not unlock (its last message, in one line).
    """
    locks = folder / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return 0
    if not Path("/proc").is_dir():
        print(f"{folder}: cannot tell whether Snakemake runs here (no /proc); if none does, "
              "run: snakemake --unlock", file=sys.stderr)
        return 1
    pids = snakemake_pids(folder)
    if pids:
        print(f"{folder}: Snakemake is running here (pid {', '.join(map(str, pids))}); not "
              "unlocking. Wait for it, or stop it first.", file=sys.stderr)
        return 1
    done = subprocess.run(snakemake_command([*args, "--unlock", "--quiet"]),
                          capture_output=True, text=True, env=job_environment())
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        raise ValueError(f"{folder}: snakemake --unlock failed: "
                         f"{lines[-1] if lines else f'exit status {done.returncode}'}")
    print(f"{folder}: removed the stale lock of a killed Snakemake run")
    return 0
