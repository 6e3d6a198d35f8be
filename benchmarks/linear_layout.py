"""The stacked Linear's two GEMM layouts, forward + backward, side by side.

A Linear layer of K stacked members is one batched GEMM, written either as ``h Wᵀ`` (
``baddbmm(b, h, Wᵀ)``, the natural form) or as ``(W hᵀ)ᵀ`` (``baddbmm(b, W, hᵀ)`` then a
transposed view, what :mod:`phasezoo.stacked` uses). The arithmetic is the same; what differs is
the layout of the GEMMs autograd runs backward: the weight gradient is ``bmm(hᵀ, g)`` in the first
form and ``bmm(gᵀ, h)`` in the second, and MKL runs the latter 2–4× faster when the layer is
narrow (a long input, a few outputs: the zoo MLP's first layer at width 2–8, every output layer).
For each shape of the default zoo's MLP (784-w-w-10) and batch size, this times a forward and the
backward a training step needs (weights, biases, and the input gradient except for the first
layer) in both forms, best of ``--repeats``, and prints time(h Wᵀ) / time((W hᵀ)ᵀ); the last line
is their geometric mean.

    python benchmarks/linear_layout.py [--k 16] [--widths 2 8 32 128] [--batch-sizes 16 64 256]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from phasezoo.allocator import reuse_freed_memory


def step(natural: bool, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> None:
    """One forward + backward of the stacked Linear in the chosen layout."""
    if natural:
        out = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
    else:
        out = torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2)).transpose(1, 2)
    inputs = [w, b] + ([h] if h.requires_grad else [])
    torch.autograd.grad(out, inputs, torch.ones_like(out))


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` calls after two warm-up calls, in seconds."""
    fn(), fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 8, 32, 128])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    reuse_freed_memory()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K={args.k}")
    print(f"{'batch':>5} {'in→out':>10} {'h Wᵀ µs':>9} {'(W hᵀ)ᵀ µs':>11} {'ratio':>6}")
    ratios = []
    for bs in args.batch_sizes:
        for width in args.widths:
            for fan_in, fan_out in ((784, width), (width, width), (width, 10)):
                h = torch.randn(args.k, bs, fan_in).requires_grad_(fan_in != 784)
                w = torch.randn(args.k, fan_out, fan_in, requires_grad=True)
                b = torch.randn(args.k, fan_out, requires_grad=True)
                natural = best_time(lambda: step(True, h, w, b), args.repeats)
                chosen = best_time(lambda: step(False, h, w, b), args.repeats)
                ratios.append(natural / chosen)
                print(f"{bs:5d} {f'{fan_in}→{fan_out}':>10} {natural * 1e6:9.0f} "
                      f"{chosen * 1e6:11.0f} {natural / chosen:6.2f}", flush=True)
    print(f"ratio: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f} (geometric mean of "
          f"time(h Wᵀ) / time((W hᵀ)ᵀ); min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
