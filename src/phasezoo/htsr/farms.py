"""FARMS: fixed-aspect-ratio windows of a weight, their pooled ESDs and the layer's FARMS α.

Conventions (window grid, conv blocks, fits) are those of the FARMS reference code; see
``docs/htsr.md`` for the details and why.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from phasezoo.htsr.fit import fit_many
from phasezoo.htsr.plan import LayerPlan
from phasezoo.htsr.spectra import EigenJobs, pooled

FARMS_WINDOW = 100  # FARMS image-classification defaults: r, Q, ops
FARMS_Q = 1.0
FARMS_OPS = 9
FARMS_FITS = {"ks": "weightwatcher-ks", "median": "farms-median"}  # farms_fit → attrs label


def _farms_starts(size: int, win: int, ops: int) -> list[int]:
    """Window starts along one dimension, as FARMS's ``fixed_sampling`` computes them (negative
    when the dimension is shorter than the window)."""
    step = max(1, (size - win) // (ops - 1))
    count = min(ops, max(1, (size - win) // step + 1))
    return [min(i * step, size - win) for i in range(count)]


def farms_linear_windows(w: torch.Tensor, r: int, q: float, ops: int) -> torch.Tensor:
    """FARMS's windows of a dense weight, ``(windows, rows, cols)``, sliced exactly as its
    ``fixed_sampling`` slices ``matrix[start:start + r, ...]`` with Python's slice rules.

    For a dimension no shorter than the window that is the window itself. For a shorter one
    the reference's start ``size − r`` is negative, and a negative start counts from the end:
    a dimension of 32 against r = 100 gives all 32 (−68 clamps to 0), but one of 80 gives
    rows 60–79, only 20 (−20 is row 60). Reproduced as written, so FARMS α means what the
    reference code computes; the aspect ratio of such windows is not Q.
    """
    rows, cols = w.shape
    c = max(1, int(r * q))
    ri = torch.stack([torch.tensor(range(rows)[s:s + r]) for s in _farms_starts(rows, r, ops)])
    ci = torch.stack([torch.tensor(range(cols)[s:s + c]) for s in _farms_starts(cols, c, ops)])
    return w[ri[:, None, :, None], ci[None, :, None, :]].reshape(-1, ri.shape[1], ci.shape[1])


def window_evals(windows: torch.Tensor) -> int:
    """Eigenvalues of one FARMS window as WeightWatcher's layer rule counts them (M·rf): the
    smaller side of a ``(…, rows, cols)`` linear window, or of a conv block's ``(…, rf, rows,
    cols)`` slices times its rf kernel positions (the slices one fit pools).

    Why counted: the reference's slicing gives a dimension of 51–99 windows of only its last
    1–49 entries, so FARMS α can come from a handful of eigenvalues per window.
    """
    side = min(int(windows.shape[-2]), int(windows.shape[-1]))
    return side * (int(windows.shape[-3]) if windows.dim() == 4 else 1)


def farms_conv_blocks(slices: torch.Tensor, q: float) -> torch.Tensor:
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


def farms_alphas(jobs: EigenJobs, layers: list[LayerPlan], method: str,
                  filter_zeros: bool = False) -> list[float]:
    """Each layer's FARMS α: the mean over its FARMS ESDs' successful fits (NaN if none).
    ``filter_zeros``: FARMS's own option (off in its code) to drop eigenvalues ≤ 1e-5 first."""
    owners = [k for k, p in enumerate(layers) for _ in p.farms]
    fits = fit_many([pooled(jobs, s, p.scale) for p in layers for s in p.farms], method,
                     drop_small=filter_zeros)
    per_layer: dict[int, list[float]] = {}
    for k, f in zip(owners, fits, strict=True):
        if f.ok:
            per_layer.setdefault(k, []).append(f.alpha)
    return [float(np.mean(per_layer[k])) if k in per_layer else math.nan
            for k in range(len(layers))]
