"""The layouts :mod:`phasezoo.stacked_layers` chooses for two layers, against the plain ones, side by side.

**Linear.** A Linear layer of K stacked members is one batched GEMM, written either as ``h Wᵀ``
(``baddbmm(b, h, Wᵀ)``, the natural form) or as ``(W hᵀ)ᵀ`` (``baddbmm(b, W, hᵀ)`` then a
transposed view: phasezoo's). The arithmetic is the same; what differs is the layout of the GEMMs
autograd runs backward: the weight gradient is ``bmm(hᵀ, g)`` in the first form and
``bmm(gᵀ, h)`` in the second, which MKL runs 2–5× faster when the layer is narrow (a long input,
a few outputs: the zoo MLP's first layer at width 2–8, every output layer). Timed over each
layer shape of the default zoo's MLP (784-w-w-10): a forward and the backward a training step
needs (weights, biases, and the input gradient except for the first layer).

**First convolution of a grayscale model.** K members' one-channel → w-channel 3×3
convolutions are one convolution of ``[B, K, H, W]`` (channels-last) either with ``groups=K``
(each group one input channel, w outputs) or, phasezoo's, as a depthwise convolution
(``groups=K·w``) of the input replicated w times per member
(:func:`phasezoo.stacked_layers._replicate_channels`): the same products and weight tensor. Timed: a
forward and the weight and bias gradients (the image needs none), replica included, at widths up
to 32 (phasezoo replicates only up to ``DEPTHWISE_MAX_WIDTH``; the wider rows show why; the
``conv ratio`` line averages the rows where it does).

Each row prints time(plain) / time(phasezoo's), best of ``--repeats``; each part ends with a
line ``<part> ratio: X``, their geometric mean.

    python benchmarks/stacked_layouts.py [--k 16] [--batch-sizes 16 64 256] [--only linear|conv]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch.nn import functional as F

from phasezoo.allocator import reuse_freed_memory
from phasezoo.stacked_layers import DEPTHWISE_MAX_WIDTH, _replicate_channels


def linear_step(natural: bool, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> None:
    """One forward + backward of the stacked Linear in the chosen layout."""
    if natural:
        out = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
    else:
        out = torch.baddbmm(b.unsqueeze(2), w, h.transpose(1, 2)).transpose(1, 2)
    inputs = [w, b] + ([h] if h.requires_grad else [])
    torch.autograd.grad(out, inputs, torch.ones_like(out))


def conv_step(grouped: bool, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int) -> None:
    """One forward + weight/bias backward of the K members' first convolution."""
    width = w.shape[0] // k
    if grouped:
        out = F.conv2d(x, w, b, 1, 1, 1, k)
    else:
        out = F.conv2d(_replicate_channels(x, width), w, b, 1, 1, 1, k * width)
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


def compare(label: str, plain, chosen, repeats: int) -> float:
    """Print one row (µs each, ratio) and return time(plain) / time(chosen)."""
    a, b = best_time(plain, repeats), best_time(chosen, repeats)
    print(f"{label:>32} {a * 1e6:10.0f} {b * 1e6:10.0f} {a / b:6.2f}", flush=True)
    return a / b


def summary(part: str, ratios: list[float]) -> None:
    print(f"{part} ratio: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f} (geometric "
          f"mean of time(plain) / time(phasezoo's); min {min(ratios):.2f}, max {max(ratios):.2f})")


def linear_part(args) -> None:
    print(f"Linear: h Wᵀ vs (W hᵀ)ᵀ\n{'batch, in→out':>32} {'plain µs':>10} {'chosen µs':>10} "
          f"{'ratio':>6}")
    ratios = []
    for bs in args.batch_sizes:
        for width in args.widths:
            for fan_in, fan_out in ((784, width), (width, width), (width, 10)):
                h = torch.randn(args.k, bs, fan_in).requires_grad_(fan_in != 784)
                w = torch.randn(args.k, fan_out, fan_in, requires_grad=True)
                b = torch.randn(args.k, fan_out, requires_grad=True)
                ratios.append(compare(f"{bs}, {fan_in}→{fan_out}",
                                      lambda: linear_step(True, h, w, b),
                                      lambda: linear_step(False, h, w, b), args.repeats))
    summary("linear", ratios)


def conv_part(args) -> None:
    print(f"First convolution (1 → w channels, 28×28): grouped vs depthwise of the replica; "
          f"phasezoo uses the latter up to width {DEPTHWISE_MAX_WIDTH}\n"
          f"{'batch, width':>32} {'plain µs':>10} {'depthw. µs':>10} {'ratio':>6}")
    ratios = []
    for bs in args.batch_sizes:
        for width in args.cnn_widths:
            x = torch.randn(bs, args.k, 28, 28).contiguous(memory_format=torch.channels_last)
            w = torch.randn(args.k * width, 1, 3, 3, requires_grad=True)
            b = torch.randn(args.k * width, requires_grad=True)
            used = "" if width <= DEPTHWISE_MAX_WIDTH else " (grouped used)"
            ratio = compare(f"{bs}, {width}{used}", lambda: conv_step(True, x, w, b, args.k),
                            lambda: conv_step(False, x, w, b, args.k), args.repeats)
            if not used:
                ratios.append(ratio)
    summary("conv", ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 8, 32, 128])
    ap.add_argument("--cnn-widths", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--only", choices=["linear", "conv"])
    args = ap.parse_args()
    reuse_freed_memory()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K={args.k}")
    if args.only != "conv":
        linear_part(args)
    if args.only != "linear":
        conv_part(args)


if __name__ == "__main__":
    main()
