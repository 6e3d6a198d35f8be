"""What the local learning coefficient adds to the measure stage of one default-zoo cell.

The measure stage (``phasezoo measure``) is the per-checkpoint metrics table
(:func:`phasezoo.metrics.cell_metrics`) plus the seed-pair table
(:func:`phasezoo.landscape.pairs.cell_pairs`). λ̂ touches only the first, at the landscape epoch,
so the pair table is timed once and the metrics table twice: with the zoo's ``metrics`` section
as configured (llc on) and with ``llc_steps: 0`` (llc off), alternating ``--repeats`` times, the
fastest run of each counting (the machine is shared). One torch thread, as the measure rule runs.

The cell is ``results/mnist-mlp/<cell>/train.h5`` of ``config/config.yaml`` (train it first:
``phasezoo train --config config/config.yaml --zoo mnist-mlp --cell <cell>``). The last lines
are the measure stage's seconds with llc off and on, and their ratio.

    python benchmarks/llc.py [--cell batch_size-1024_width-128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from phasezoo.config import load_config
from phasezoo.data import cell_split
from phasezoo.landscape.pairs import cell_pairs
from phasezoo.metrics import cell_metrics

ROOT = Path(__file__).resolve().parents[1]
ZOO = "mnist-mlp"


def timed(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Time the cell's measure stage with llc off and on; print both and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="batch_size-1024_width-128")
    parser.add_argument("--repeats", type=int, default=2)
    a = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(ROOT / "config" / "config.yaml")
    zoo = cfg.zoo(ZOO)
    cell = zoo.cell_by_id(a.cell)
    train_h5 = ROOT / cfg.results_dir / ZOO / a.cell / "train.h5"
    if not train_h5.exists():
        print(f"missing: {train_h5}")
        sys.exit(1)
    split = cell_split(cell.recipe, ROOT / cfg.data_root, torch.device("cpu"))
    on = zoo.metrics
    off = dataclasses.replace(on, llc_steps=0)
    cpu = torch.device("cpu")
    pairs = timed(lambda: cell_pairs(train_h5, split, on, progress=False))
    best = {"off": float("inf"), "on": float("inf")}
    for _ in range(a.repeats):
        for name, s in (("off", off), ("on", on)):
            best[name] = min(best[name], timed(lambda s=s: cell_metrics(train_h5, split, cpu, s,
                                                                       progress=False)))
    landscape = len(zoo.seeds)  # checkpoints measured at the landscape epoch
    print(f"cell {a.cell}: {len(zoo.seeds)} seeds × {len(zoo.train.keep_epochs)} kept epochs; "
          f"llc on {landscape} checkpoints ({on.llc_chains} chains × "
          f"{on.llc_burnin + on.llc_steps} steps of batch {on.llc_batch_size})")
    print(f"metrics table: off {best['off']:.1f} s, on {best['on']:.1f} s; pairs {pairs:.1f} s")
    stage_off, stage_on = best["off"] + pairs, best["on"] + pairs
    print(f"llc per checkpoint: {(best['on'] - best['off']) / landscape:.2f} s")
    print(f"measure stage: off {stage_off:.1f} s, on {stage_on:.1f} s, "
          f"ratio {stage_on / stage_off:.2f}")


if __name__ == "__main__":
    main()
