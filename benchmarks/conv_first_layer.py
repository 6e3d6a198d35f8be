"""The stacked first convolution of a grayscale model: grouped vs depthwise, side by side.

K members' one-channel → w-channel 3×3 convolutions are one convolution of ``[B, K, H, W]``
(channels-last) either with ``groups=K`` (each group one input channel, w outputs) or, what
:mod:`phasezoo.stacked` runs, as a depthwise convolution (``groups=K·w``) of the input replicated
w times per member (:func:`phasezoo.stacked._replicate_channels`). Same products, same weight
tensor. For each (width, batch size) this times a forward and the backward a training step needs
(weight and bias gradients; the image needs none), replica included, best of ``--repeats``, and
prints time(grouped) / time(depthwise); the last line is their geometric mean.

    python benchmarks/conv_first_layer.py [--k 16] [--widths 2 4 8] [--batch-sizes 16 64 256]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch.nn import functional as F

from phasezoo.allocator import reuse_freed_memory
from phasezoo.stacked import _replicate_channels


def step(depthwise: bool, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int) -> None:
    """One forward + weight/bias backward of the K members' first convolution."""
    width = w.shape[0] // k
    if depthwise:
        out = F.conv2d(_replicate_channels(x, width), w, b, 1, 1, 1, k * width)
    else:
        out = F.conv2d(x, w, b, 1, 1, 1, k)
    torch.autograd.grad(out, [w, b], torch.ones_like(out))


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
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--size", type=int, default=28, help="image side (MNIST: 28)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    reuse_freed_memory()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K={args.k}, "
          f"{args.size}×{args.size} images")
    print(f"{'width':>5} {'batch':>5} {'grouped ms':>10} {'depthwise ms':>12} {'ratio':>6}")
    ratios = []
    for width in args.widths:
        for bs in args.batch_sizes:
            x = torch.randn(bs, args.k, args.size, args.size).contiguous(
                memory_format=torch.channels_last)
            w = torch.randn(args.k * width, 1, 3, 3, requires_grad=True)
            b = torch.randn(args.k * width, requires_grad=True)
            grouped = best_time(lambda: step(False, x, w, b, args.k), args.repeats)
            depthwise = best_time(lambda: step(True, x, w, b, args.k), args.repeats)
            ratios.append(grouped / depthwise)
            print(f"{width:5d} {bs:5d} {grouped * 1e3:10.2f} {depthwise * 1e3:12.2f} "
                  f"{grouped / depthwise:6.2f}", flush=True)
    print(f"ratio: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f} (geometric mean of "
          f"time(grouped) / time(depthwise); min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
