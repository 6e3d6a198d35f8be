"""Remove a stale Snakemake lock after a kill, but only when no Snakemake runs in this folder.

Usage: python workflow/scripts/unlock.py [FOLDER [SNAKEMAKE ARGS ...]]
  FOLDER: Snakemake's working directory (default: the current folder); SNAKEMAKE ARGS: what
  the run was given besides it, e.g. --configfile my-zoo.yaml (the workflow is parsed to unlock).

After a SIGKILL or a power loss, Snakemake's lock in FOLDER/.snakemake/locks stays behind and
every later run stops with a LockException. ``snakemake --unlock`` removes it, but would also
remove the lock of a run that is still going; this script first looks for a live Snakemake
process whose working directory is FOLDER (Linux: /proc) and refuses if it finds one.
Exit status: 0 unlocked or nothing to unlock, 1 a Snakemake process holds the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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


REPO = Path(__file__).resolve().parents[2]


def main(folder: Path, extra: list[str]) -> int:
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
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                    "--directory", str(folder), "--unlock", "--quiet", *extra], cwd=REPO,
                   check=True, capture_output=True)
    print(f"{folder}: removed the stale lock of a killed Snakemake run")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve(), sys.argv[2:]))
