"""Remove a stale Snakemake lock after a kill, but only when no Snakemake runs in this folder.

Usage: python workflow/scripts/unlock.py [FOLDER [SNAKEMAKE ARGS ...]]
  FOLDER: Snakemake's working directory (default: the current folder); SNAKEMAKE ARGS: what
  the run was given besides it, e.g. --configfile my-zoo.yaml (the workflow is parsed to unlock;
  config files are read and validated by phasezoo first, never by Snakemake's template engine).

``phasezoo run`` does this before every run; this script is the same step alone
(:mod:`phasezoo.unlock`). Exit status: 0 unlocked or nothing to unlock, 1 a Snakemake process
holds the folder, 2 a config or Snakemake error (one line).
"""

from __future__ import annotations

import sys
from pathlib import Path

from phasezoo.config_checks import ConfigError
from phasezoo.launch import checked_arguments
from phasezoo.unlock import unlock_stale

REPO = Path(__file__).resolve().parents[2]


def main(folder: Path, extra: list[str]) -> int:
    try:
        args = checked_arguments(["-s", str(REPO / "Snakefile"), "--directory", str(folder),
                                  *extra], folder, REPO)
        return unlock_stale(folder, args)
    except (ConfigError, ValueError) as e:
        print(f"unlock: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve(), sys.argv[2:]))
