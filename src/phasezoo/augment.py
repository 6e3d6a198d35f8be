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

import torch
from torch.nn import functional as F

from phasezoo.runtime import generator


def augment_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one member's draws at (epoch, step): distinct across all three."""
    return (seed * 1_000_003 + epoch) * 100_003 + step


def is_active(spec: dict | None) -> bool:
    """Whether ``spec`` (a config ``train.augment`` section) changes anything."""
    return bool(spec) and bool(spec.get("crop") or spec.get("flip") or spec.get("rotation"))


def augment(x: torch.Tensor, spec: dict, seed: int) -> torch.Tensor:
    """An augmented copy of the image batch ``x`` (B, C, H, W) under ``spec``.

    ``spec``: ``crop`` (padding in pixels; crop back to H × W at a random offset), ``flip`` (each
    image mirrored with probability ½), ``rotation`` (degrees; angle uniform in ±rotation,
    nearest-neighbour as torchvision's default).
    """
    if x.dim() != 4:
        raise ValueError(f"train.augment applies to image batches (B, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    gen, b = generator(seed), len(x)
    pad = int(spec.get("crop", 0))
    if pad:
        x = _random_crop(x, pad, torch.randint(0, 2 * pad + 1, (2, b), generator=gen))
    if spec.get("flip"):
        mirror = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    degrees = float(spec.get("rotation", 0))
    if degrees:
        angles = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(degrees)
        x = _rotate(x, angles.to(x.device, x.dtype))
    return x


def _random_crop(x: torch.Tensor, pad: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad by ``pad`` and cut an H × W window at per-image ``offsets`` (2, B)."""
    _, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = offsets.to(x.device)
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
