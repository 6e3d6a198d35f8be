"""Training-time image augmentation on device tensors: random crop, horizontal flip, rotation.

The reference ResNet zoos train with torchvision's ``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip()`` (not for SVHN) and ``RandomRotation(20)``. Those transforms work on one
PIL image at a time inside DataLoader workers; here the data is resident on the device, so the
same three transforms are applied to a whole batch at once, with every random draw taken from a
generator seeded by (member seed, epoch, step): a resumed run, and the stacked and per-member
trainers, see the same augmented batches. One difference: images are standardized before
augmentation, so the padding (crop) and the corners uncovered by a rotation are the dataset
mean rather than black.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.nn import functional as F

from phasezoo.runtime import generator


def augment_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one member's draws at (epoch, step): distinct across all three. Reduced below
    2**63 (torch's generator takes a signed 64-bit seed): a derived seed up to
    ``runtime.STREAM_BOUND`` (the three-regime study's retraining seeds) would overflow it, and
    a zoo's own seeds (below ~9·10^7) are left as they were."""
    return ((seed * 1_000_003 + epoch) * 100_003 + step) % 2 ** 63


def is_active(spec: dict | None) -> bool:
    """Whether ``spec`` (a config ``train.augment`` section) changes anything."""
    return bool(spec) and bool(spec.get("crop") or spec.get("flip") or spec.get("rotation"))


def augment(x: torch.Tensor, spec: dict, seeds: int | Sequence[int]) -> torch.Tensor:
    """An augmented copy of the image batch ``x`` (B, C, H, W) under ``spec``.

    ``spec``: ``crop`` (padding in pixels; crop back to H × W at a random offset), ``flip`` (each
    image mirrored with probability ½), ``rotation`` (degrees; angle uniform in ±rotation,
    nearest-neighbour as torchvision's default). ``seeds``: one seed for the whole batch, or one
    per member when ``x`` is K members' batches one after another (B = K·b), each member's draws
    from its own seed, so the result equals augmenting each member's batch alone (what the
    stacked trainer relies on) in one pass over all of them.
    """
    if x.dim() != 4:
        raise ValueError(f"train.augment applies to image batches (B, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    if not is_active(spec):
        return x
    seeds = [int(s) for s in seeds] if isinstance(seeds, Sequence) else [int(seeds)]
    if not seeds or len(x) % len(seeds):
        raise ValueError(f"train.augment: a batch of {len(x)} images does not split into "
                         f"{len(seeds)} members' batches")
    pad, flip = int(spec.get("crop", 0)), bool(spec.get("flip"))
    degrees = float(spec.get("rotation", 0))
    draws = _to_device(_draws(len(x) // len(seeds), seeds, pad, flip, degrees), x.device)
    row = 0
    if pad:
        x = _random_crop(x, pad, draws[:2].long())
        row = 2
    if flip:
        x = torch.where((draws[row] > 0.5)[:, None, None, None], x.flip(-1), x)
        row += 1
    if degrees:
        x = _rotate(x, draws[row].to(x.dtype))
    return x


def _draws(b: int, seeds: list[int], pad: int, flip: bool, degrees: float) -> torch.Tensor:
    """Every random draw of one augmentation, on the CPU, as one float32 ``[rows, K·b]`` table:
    crop offsets (2 rows, if ``pad``), mirror flags (1 row, if ``flip``), rotation angles in
    radians (1 row, if ``degrees``); columns member-major, each member's from its own
    generator in that order (the offsets are small integers and the angles float32 draws, so
    float32 holds all of them exactly, on any device: MPS has no float64)."""
    columns = []
    for seed in seeds:
        gen, rows = generator(seed), []
        if pad:
            rows.append(torch.randint(0, 2 * pad + 1, (2, b), generator=gen).float())
        if flip:
            rows.append((torch.rand(b, generator=gen) < 0.5).float()[None])
        if degrees:
            rows.append(((torch.rand(b, generator=gen) * 2 - 1) * math.radians(degrees))[None])
        columns.append(torch.cat(rows))
    return torch.cat(columns, dim=1)


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` in one copy; to a GPU from pinned memory without waiting for it
    (a pageable copy would wait for every queued kernel, once per training step)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _random_crop(x: torch.Tensor, pad: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad by ``pad`` and cut an H × W window at per-image ``offsets`` (2, B)."""
    _, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(len(x), device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre by ``angles`` (radians); outside pixels become 0."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
