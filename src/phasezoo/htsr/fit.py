"""Power-law fits of ESDs: WeightWatcher's WWFit (KS-chosen x_min, MLE α), vectorized; FARMS's
median fit. Every candidate x_min of an ESD is scored at once with cumulative sums (and a
branch-and-bound search for long ESDs) instead of WeightWatcher's Python loop over candidates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

EVALS_THRESH = 1e-5  # WW constants.EVALS_THRESH: eigenvalues at or below are not fitted
SMALL_N = 20  # WW_powerlaw.SMALL_N_CUTOFF
SMALL_N_MIN_TAIL = 8  # fit_powerlaw_smallN k_min
SMALL_N_MIN_LOGSUM = 1e-12  # fit_powerlaw_smallN: Σ log(x/x_min) at or below is degenerate
FULL_KS_MAX_N = 1024  # above: branch-and-bound x_min search (the full one is O(N²) memory/time)
_BLOCK_ELEMS = 1 << 21  # elements per broadcast block (16 MiB of float64)
_PRUNE_STRIDES = (256, 64, 16, 4)  # branch-and-bound sample strides, coarse to fine, then exact
_PRUNE_SLACK = 1e-12  # rounding allowance in the bound comparisons
FIT_METHODS = ("ks", "median")


@dataclass(frozen=True)
class PowerLawFit:
    """WeightWatcher-style power-law fit of one ESD (``ok=False``: WW's failed fit, all −1)."""

    alpha: float
    xmin: float
    ks_distance: float
    sigma: float
    ok: bool


FAILED_FIT = PowerLawFit(-1.0, -1.0, -1.0, -1.0, False)


def _candidates(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                        np.ndarray]:
    """Per candidate x_min of sorted ESDs ``x`` (B, N ≥ 2): log x, α, whether D is computed, ok,
    fallback.

    ``ok`` is False for an ESD whose fit WW reports as failed; ``fallback`` marks small-N ESDs
    fitted by WW's no-candidate fallback (candidate 0 with the whole ESD), whose σ WW computes
    before setting α: ``σ = (0 − 1)/√N``.
    """
    b, n_ev = x.shape
    logx = np.log(x)
    centred = logx - logx[:, -1:]
    suffix = np.cumsum(centred[:, ::-1], axis=1)[:, ::-1]
    n = np.arange(n_ev, 1, -1, dtype=np.float64)  # tail size of candidate i = N − i
    s = suffix[:, :-1] - n * centred[:, :-1]  # Σ_{j≥i} log(x_j / x_i)
    ok = np.ones(b, dtype=bool)
    fallback = np.zeros(b, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        if n_ev >= SMALL_N:
            alpha = 1.0 + n / s
            compute = alpha > 1.0
        else:
            compute = (n >= SMALL_N_MIN_TAIL) & (s > SMALL_N_MIN_LOGSUM)
            fallback = ~compute.any(axis=1)
            compute[:, 0] |= fallback & (s[:, 0] > SMALL_N_MIN_LOGSUM)
            ok = compute.any(axis=1)
            alpha = np.where(compute, 1.0 + (n - 1.0) / np.where(compute, s, 1.0), 0.0)
    return logx, alpha, compute, ok, fallback


def _exponents(alpha: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """``1 − α`` where D is computed (−∞ → −1e300: ``(x/x_min)^−∞`` stays 1 at x = x_min)."""
    a1 = np.where(compute, 1.0 - alpha, -1.0)
    return np.maximum(a1, -1e300)


@functools.lru_cache(maxsize=8)
def _one_minus_ecdf(n_ev: int) -> np.ndarray:
    """``1 − (j − i)/(N − i)`` for candidate i and eigenvalue j ≥ i; 1 below the diagonal."""
    i = np.arange(n_ev - 1, dtype=np.float64)[:, None]
    j = np.arange(n_ev, dtype=np.float64)[None, :]
    out = 1.0 - (j - i) / (n_ev - i)
    out[j < i] = 1.0
    return out


def _ks_full(logx: np.ndarray, a1: np.ndarray) -> np.ndarray:
    """KS distance of every candidate of every ESD (B, N−1), by broadcast blocks.

    In torch: its elementwise kernels use every core (3× numpy's time on 2 cores).
    """
    b, n_ev = logx.shape
    omq = torch.from_numpy(_one_minus_ecdf(n_ev))
    lt, at = torch.from_numpy(logx), torch.from_numpy(a1)
    d = torch.empty((b, n_ev - 1), dtype=torch.float64)
    per_esd = (n_ev - 1) * n_ev
    if per_esd <= _BLOCK_ELEMS:
        step_b, step_r = max(1, _BLOCK_ELEMS // per_esd), n_ev - 1
    else:
        step_b, step_r = 1, max(1, _BLOCK_ELEMS // n_ev)
    for b0 in range(0, b, step_b):
        lb = lt[b0:b0 + step_b]
        for r0 in range(0, n_ev - 1, step_r):
            r1 = min(n_ev - 1, r0 + step_r)
            t = lb[:, None, r0:] - lb[:, r0:r1, None]  # log(x_j / x_i), ≤ 0 below the diagonal
            t.clamp_(min=0.0).mul_(at[b0:b0 + step_b, r0:r1, None]).exp_()
            torch.sub(omq[r0:r1, r0:], t, out=t).abs_()
            d[b0:b0 + step_b, r0:r1] = t.amax(dim=-1)
    return d.numpy()


def _ks_bounds(logx: np.ndarray, a1: np.ndarray, cand: np.ndarray,
               stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the KS distance of candidates ``cand`` of one ESD.

    The statistic on the tail positions i, i + stride, …, N − 1 is a lower bound (exact for
    stride 1). Between two samples a < b both CDFs are nondecreasing, so the gap's deviation is at
    most ``max(F_fit(b) − F_emp(a), F_emp(b) − F_fit(a))``: the upper bound.
    """
    n_ev = len(logx)
    lower = np.empty(len(cand))
    upper = np.empty(len(cand))
    steps = -(-(n_ev - 1 - int(cand.min())) // stride) + 1
    offsets = stride * np.arange(steps)
    chunk = max(1, _BLOCK_ELEMS // steps)
    for c0 in range(0, len(cand), chunk):
        ci = cand[c0:c0 + chunk]
        pos = np.minimum(ci[:, None] + offsets[None, :], n_ev - 1)
        n = (n_ev - ci).astype(np.float64)[:, None]
        f_emp = (pos - ci[:, None]) / n
        f_fit = 1.0 - np.exp(a1[ci][:, None] * (logx[pos] - logx[ci][:, None]))
        lo = np.abs(f_fit - f_emp).max(axis=1)
        gap = np.maximum(f_fit[:, 1:] - f_emp[:, :-1], f_emp[:, 1:] - f_fit[:, :-1])
        lower[c0:c0 + chunk] = lo
        upper[c0:c0 + chunk] = np.maximum(lo, gap.max(axis=1)) if steps > 1 else lo
    return lower, upper


def _ks_exact(logx: np.ndarray, a1: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact KS distances of candidates ``cand`` of one ESD (every tail position)."""
    n_ev = len(logx)
    out = np.empty(len(cand))
    steps = n_ev - int(cand.min())
    offsets = np.arange(steps)
    chunk = max(1, _BLOCK_ELEMS // steps)
    for c0 in range(0, len(cand), chunk):
        ci = cand[c0:c0 + chunk]
        pos = np.minimum(ci[:, None] + offsets[None, :], n_ev - 1)
        t = logx[pos]
        t -= logx[ci][:, None]
        t *= a1[ci][:, None]
        np.exp(t, out=t)
        t += (pos - ci[:, None]) / (n_ev - ci).astype(np.float64)[:, None]
        np.subtract(1.0, t, out=t)
        np.abs(t, out=t)
        out[c0:c0 + chunk] = t.max(axis=1)
    return out


def _ks_pruned(logx: np.ndarray, a1: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """KS distances of one ESD's candidates (N−1,), exact wherever the minimum could be.

    Candidates that cannot be the (first) minimizer get a value strictly above the minimum (their
    lower bound), so ``argmin`` of the result is the full search's winner. At each stride the
    best bound is also tightened by the exact D of the candidate with the smallest lower bound.
    """
    d = np.ones(len(logx) - 1)
    cand = np.flatnonzero(compute)
    if len(cand) == 0:
        return d
    for stride in (s for s in _PRUNE_STRIDES if 4 * s < len(logx)):
        lower, upper = _ks_bounds(logx, a1, cand, stride)
        probe = _ks_exact(logx, a1, cand[np.argmin(lower)][None])[0]
        keep = lower <= min(upper.min(), probe) + _PRUNE_SLACK
        d[cand[~keep]] = lower[~keep]
        cand = cand[keep]
    d[cand] = _ks_exact(logx, a1, cand)
    return d


def _fit_sorted(x: np.ndarray) -> list[PowerLawFit]:
    """WW fits of ESDs of equal length: ``x`` (B, N), each row ascending and > EVALS_THRESH."""
    b, n_ev = x.shape
    if n_ev < 2:
        return [FAILED_FIT] * b
    logx, alpha, compute, ok, fallback = _candidates(x)
    a1 = _exponents(alpha, compute)
    if n_ev <= FULL_KS_MAX_N:
        d = np.where(compute, _ks_full(logx, a1), 1.0)
    else:
        d = np.stack([_ks_pruned(logx[k], a1[k], compute[k]) for k in range(b)])
    best = np.argmin(d, axis=1)
    rows = np.arange(b)
    a, dd = alpha[rows, best], d[rows, best]
    sigma = (np.where(fallback, 0.0, a) - 1.0) / np.sqrt(n_ev - best)
    return [PowerLawFit(float(a[k]), float(x[k, best[k]]), float(dd[k]), float(sigma[k]), True)
            if ok[k] else FAILED_FIT for k in range(b)]


def _median_fit(x: np.ndarray) -> PowerLawFit:
    """FARMS's "median" fit of an ascending ESD: x_min = the median eigenvalue.

    ``i = int(N/2)``, α by the same MLE over the top ``N − i`` values, D its KS distance; no
    search (FARMS ``analysis_esd`` with ``fix_fingers='median'``, ``xmin_pos=2``).
    """
    n_ev = len(x)
    if n_ev < 2:
        return FAILED_FIT
    i = n_ev // 2
    n = float(n_ev - i)
    with np.errstate(divide="ignore", invalid="ignore"):
        logx = np.log(x)  # zeros below the median (an unfiltered ESD) are never used
        alpha = 1.0 + n / (np.sum(logx[i:]) - n * logx[i])
    if not np.isfinite(alpha) or alpha <= 1.0:
        return FAILED_FIT
    d = np.max(np.abs(1.0 - (x[i:] / x[i]) ** (1.0 - alpha) - np.arange(n) / n))
    return PowerLawFit(float(alpha), float(x[i]), float(d), float((alpha - 1.0) / math.sqrt(n)),
                       True)


def fit_many(esds: list[np.ndarray], method: str = "ks",
              drop_small: bool = True) -> list[PowerLawFit]:
    """Fits of many ascending ESDs; with the KS search, equal fitted lengths are fitted together.
    ``drop_small``: leave out eigenvalues ≤ EVALS_THRESH first (WeightWatcher does; FARMS's
    reference code, ``filter_zeros=False``, does not)."""
    tails = [e[e > EVALS_THRESH] for e in esds] if drop_small else list(esds)
    if method == "median":
        return [_median_fit(t) for t in tails]
    by_len: dict[int, list[int]] = {}
    for k, t in enumerate(tails):
        by_len.setdefault(len(t), []).append(k)
    fits: list[PowerLawFit] = [FAILED_FIT] * len(esds)
    for n_ev, idx in by_len.items():
        if n_ev > FULL_KS_MAX_N:
            results = [_fit_sorted(tails[k][None])[0] for k in idx]
        else:
            results = _fit_sorted(np.stack([tails[k] for k in idx]) if n_ev else
                                  np.empty((len(idx), 0)))
        for k, r in zip(idx, results, strict=True):
            fits[k] = r
    return fits


def fit_power_law(eigenvalues: np.ndarray, method: str = "ks") -> PowerLawFit:
    """Power-law fit of one ESD (any order; values ≤ 1e-5 are dropped).

    ``method="ks"``: WeightWatcher 0.7.7's x_min search (docs/htsr.md); ``"median"``: FARMS's
    default fit, x_min = the median eigenvalue (:func:`_median_fit`).
    """
    if method not in FIT_METHODS:
        raise ValueError(f"fit method must be one of {list(FIT_METHODS)}, got {method!r}")
    esd = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    return fit_many([esd], method)[0]
