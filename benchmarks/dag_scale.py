"""DAG build time against job count: ``snakemake -n --profile slurm`` on growing ResNet-18 zoos.

Each size is a CIFAR-10 ResNet-18 zoo of ``cells`` grid cells × 50 seeds (the shape of the
Model Zoos and small-CNN-zoo collections, 10^4–10^5 models), planned (dry run, nothing trained)
with the Slurm profile, as a user plans a cluster run. Every cell has a train, a measure and
two job-config jobs, so the job count is about 4 × cells. The goal: ≤ 120 s for 4,000 jobs, and
time growing linearly with the job count (constant seconds per 1,000 jobs).

``--reference DIR`` plans the same configs with another phasezoo checkout beside this one (e.g.
``git worktree add /tmp/ref <commit>``), in the same run, up to ``--reference-max-cells``.

The last line is ``ratio: X``: the 120 s goal over the measured build time scaled to 4,000
jobs from the largest size (X ≥ 1 meets the goal).

    python benchmarks/dag_scale.py [--cells 250 500 1000 2000] [--seeds 50]
                                   [--reference DIR] [--reference-max-cells 1000]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
GOAL_S, GOAL_JOBS = 120.0, 4000


def zoo_config(cells: int, seeds: int, root: Path) -> dict:
    """A ResNet-18 zoo of at least ``cells`` cells (batch sizes × up to 50 widths, rounded up
    to whole rows of widths)."""
    n_load = min(50, cells)
    n_temp = math.ceil(cells / n_load)
    return {"results_dir": str(root / "results"), "zoos_dir": str(root / "zoos"),
            "zoos": {"resnet18-scale": {
                "dataset": {"name": "cifar10"}, "model": {"name": "resnet18"},
                "temperature": {"name": "batch_size",
                                "values": [8 * (i + 1) for i in range(n_temp)]},
                "load": {"name": "width", "values": [2 + i for i in range(n_load)]},
                "seeds": list(range(seeds)),
                "train": {"epochs": 150, "keep_epochs": [0, 50, 100, 150], "lr": 0.1,
                          "schedule": "onecycle"},
                "resources": {"gpu": True, "runtime": {"train": 720, "measure": 240},
                              "mem_mb": {"train": 16000, "measure": 16000}}}}}


def plan(config: Path, repo: Path = REPO) -> tuple[float, int]:
    """(seconds, jobs) of one dry run of the Slurm profile of the checkout ``repo`` (its
    Snakefile and its ``src``) on ``config``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(repo / "src")}
    start = time.perf_counter()
    run = subprocess.run(["snakemake", "-n", "--profile", "slurm", "--configfile", str(config)],
                         cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"snakemake -n failed on {config}:\n{run.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)", run.stdout, re.M)
    return seconds, int(total.group(1)) if total else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--reference", type=Path, help="another phasezoo checkout to plan with")
    ap.add_argument("--reference-max-cells", type=int, default=1000)
    args = ap.parse_args()
    print(f"{'cells':>6} {'models':>7} {'jobs':>6} {'build s':>8} {'s per 1k jobs':>14}"
          + (f" {'reference s':>12} {'ref/this':>8}" if args.reference else ""))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cells in args.cells:
            config = Path(tmp) / f"scale-{cells}.yaml"
            raw = zoo_config(cells, args.seeds, Path(tmp))
            (zoo,) = raw["zoos"].values()
            cells = len(zoo["temperature"]["values"]) * len(zoo["load"]["values"])  # as built
            config.write_text(yaml.safe_dump(raw))
            seconds, jobs = plan(config)
            rows.append((jobs, seconds))
            ref = ""
            if args.reference and cells <= args.reference_max_cells:
                ref_seconds, _ = plan(config, args.reference.resolve())
                ref = f" {ref_seconds:12.1f} {ref_seconds / seconds:8.1f}"
            print(f"{cells:6d} {cells * args.seeds:7d} {jobs:6d} {seconds:8.1f} "
                  f"{1000 * seconds / jobs:14.2f}{ref}", flush=True)
    (j0, s0), (j1, s1) = rows[0], rows[-1]
    growth = math.log(s1 / s0) / math.log(j1 / j0) if j1 > j0 else float("nan")
    print(f"growth exponent (log time / log jobs, smallest to largest): {growth:.2f} (1 = linear)")
    at_goal = s1 * GOAL_JOBS / j1
    print(f"build time at {GOAL_JOBS:,} jobs (scaled from {j1:,}): {at_goal:.1f} s "
          f"(goal ≤ {GOAL_S:.0f} s)")
    print(f"ratio: {GOAL_S / at_goal:.2f}")


if __name__ == "__main__":
    main()
