"""FARMS: fixed-aspect-ratio windows of a weight, their pooled ESDs and the layer's FARMS α.

Conventions (window grid, conv blocks, fits) are those of the FARMS reference code; see the
package docstring (``phasezoo.htsr``) for the details and why.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from phasezoo.htsr.fit import _fit_many
from phasezoo.htsr.spectra import _EigenJobs, _pooled

if TYPE_CHECKING:  # analysis imports this module
    from phasezoo.htsr.analysis import _LayerPlan

FARMS_WINDOW = 100  # FARMS image-classification defaults: r, Q, ops
FARMS_Q = 1.0
FARMS_OPS = 9
FARMS_FITS = {"ks": "weightwatcher-ks", "median": "farms-median"}  # farms_fit → attrs label


def _farms_starts(size: int, win: int, ops: int) -> list[int]:
    """Window starts along one dimension, as FARMS's ``fixed_sampling`` computes them."""
    step = max(1, (size - win) // (ops - 1))
    count = min(ops, max(1, (size - win) // step + 1))
    return [min(i * step, size - win) for i in range(count)]


def _farms_linear_windows(w: torch.Tensor, r: int, q: float, ops: int) -> torch.Tensor:
    """FARMS's ``r × int(r·Q)`` windows of a dense weight, ``(windows, r, c)``."""
    rows, cols = w.shape
    r = max(1, min(r, rows, math.floor(cols / q)))
    c = min(cols, max(1, int(r * q)))
    ri = torch.tensor(_farms_starts(rows, r, ops))[:, None] + torch.arange(r)  # (windows, r)
    ci = torch.tensor(_farms_starts(cols, c, ops))[:, None] + torch.arange(c)
    return w[ri[:, None, :, None], ci[None, :, None, :]].reshape(-1, r, c)


def _farms_conv_blocks(slices: torch.Tensor, q: float) -> torch.Tensor:
    """FARMS's square blocks of WW's conv slices, ``(blocks, kernel positions, nr, nc)``."""
    if slices.shape[1] < slices.shape[2]:
        slices = slices.mT  # WW transposes each slice so that rows ≥ cols
    rf, rows, cols = slices.shape
    if q > 1:
        nr, nc = max(1, int(cols // q)), cols
    else:
        nr, nc = cols, max(1, int(cols // (1 / q)))
    division = rows // cols
    blocks = slices[:, :division * nr, :nc].reshape(rf, division, nr, nc)
    return blocks.transpose(0, 1)


def _farms_alphas(jobs: _EigenJobs, layers: list[_LayerPlan], method: str) -> list[float]:
    """Each layer's FARMS α: the mean over its FARMS ESDs' successful fits (NaN if none)."""
    owners = [k for k, p in enumerate(layers) for _ in p.farms]
    fits = _fit_many([_pooled(jobs, s, p.scale) for p in layers for s in p.farms], method)
    per_layer: dict[int, list[float]] = {}
    for k, f in zip(owners, fits, strict=True):
        if f.ok:
            per_layer.setdefault(k, []).append(f.alpha)
    return [float(np.mean(per_layer[k])) if k in per_layer else math.nan
            for k in range(len(layers))]
