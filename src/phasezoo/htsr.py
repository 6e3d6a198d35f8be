"""HTSR (heavy-tailed self-regularization) metrics of weight matrices: α, FARMS α, norms.

The field's reference implementation is WeightWatcher 0.7.7 (kept as the test and benchmark
reference). Its numbers are what papers and zoos report, so every convention below is copied from
its source (``weightwatcher.py``, ``WW_powerlaw.py``, ``constants.py``) — *why*: α, x_min and the
KS distance must agree with it to 1e-6 on every layer, or two zoos cannot be compared. What is
different is only how the work is done: one batched eigenvalue call per matrix shape for a whole
population, and a vectorized x_min search.

WeightWatcher conventions matched (default ``analyze()`` options, CPU):

* **Layers**: every ``nn.Linear`` and ``nn.Conv2d`` in ``model.named_modules()`` order; the
  weight is first rounded to float32 (WW: ``T.to("cpu").float()``), then handled in float64.
* **Dimensions**: dense ``N = max(shape)``, ``M = min(shape)``, ``rf = 1``. Conv2d
  ``(out, in, kh, kw)``: ``rf = kh·kw`` and WW's own ``N, M``, including its quirk: it swaps
  ``N, M`` once *per kernel position* when ``out < in``, so for an even ``rf`` it ends with
  ``M = in`` (the larger side); when ``out + in < kh + kw`` it keeps ``N = out, M = in``.
* **Skipped layers** (its ``layer_supported`` with ``pool=True``), checked in its order:
  ``M·rf < 8`` (min_evals; the docstring says 10, the code 8), ``M·rf > 15000`` (max_evals),
  ``N > 50000`` (max_N). They are listed in ``df.attrs["skipped"]``.
* **ESD**: eigenvalues of WᵀW = ``svdvals(W)²``, no 1/N normalisation. Conv2d (``pool=True``):
  one ``(out × in)`` slice per kernel position (transposed so N ≥ M: same eigenvalues), each
  scaled by √(1/2) (``conv2d_norm``: every eigenvalue × 0.5), all slices' eigenvalues pooled into
  one ESD and one fit.
* **Fit input**: eigenvalues ``≤ EVALS_THRESH = 1e-5`` are dropped, the rest sorted ascending.
* **x_min search** (``WWFit``, not the ``powerlaw`` package): every sorted eigenvalue but the
  last is a candidate (ties included, each index is its own candidate);
  ``α = 1 + n / Σ log(x/x_min)`` over the n = N − i values from candidate i;
  ``D = max |1 − (x/x_min)^(1−α) − arange(n)/n|`` and ``D = 1`` when ``α ≤ 1``; the candidate
  with the smallest D wins (first index on ties); ``σ = (α − 1)/√n``. The reported ``xmin`` is
  that candidate's eigenvalue and ``ks_distance`` its D.
* **Small N** (fewer than 20 eigenvalues after the threshold; WW prints "SMALL N PL FIT"):
  candidates need a tail of at least 8 values and ``Σ log(x/x_min) > 1e-12`` (others keep
  α = 0, D = 1), α is bias-corrected ``1 + (n − 1)/Σ log(x/x_min)``; its objective
  ``D − 0.868/√n`` picks a winner that ``WWFit.__init__`` then *overrides* with the smallest-D
  candidate — so the smallest D wins here too. With no candidate (fewer than 8 values) it falls
  back to candidate 0 with the whole ESD.
* **Failed fits** (fewer than 2 eigenvalues above the threshold, or a degenerate small-N ESD):
  WW reports ``alpha = xmin = D = sigma = num_pl_spikes = -1`` and still computes the norms,
  so ``alpha_weighted = −log10 λmax``. Same here.
* **Norm metrics**, over *all* eigenvalues of the ESD (those ≤ 1e-5 included) with the conv
  ×0.5 scaling: ``lambda_max = max λ``; ``alpha_weighted = α·log10 λmax``;
  ``log_spectral_norm = log10 λmax``; ``log_frobenius_norm`` = WW's ``log_norm`` = ``log10 Σλ``
  (the log of the *squared* Frobenius norm); ``stable_rank = Σλ / λmax``;
  ``log_alpha_norm = log10 Σ λ^α``; ``num_eigenvalues`` = WW's ``num_evals`` (all of them,
  ``M·rf`` for a conv layer); ``num_pl_spikes`` = number of eigenvalues ≥ x_min.

Not matched: WW also analyses Conv1d and Embedding layers (here: Linear and Conv2d only), and on a
CUDA machine WW computes its SVD in fp16 (here: always float64 on the CPU).

How the work is done (the numbers above do not depend on it beyond rounding):

* **Eigenvalues**: the float64 Gram matrix of each matrix's smaller side goes through
  ``torch.linalg.eigvalsh``: all matrices of the same shape — the same layer of every model of
  a population, every conv slice, every FARMS window — in ONE batched call (the queued weights
  are cast to float64 and multiplied in cache-sized chunks straight into that batch). Measured
  on 2 CPU cores for 128 × 784: Gram 0.6 ms + eigvalsh 0.9 ms against 10 ms for WW's scipy SVD
  and ~100 ms for a batched ``torch.linalg.svdvals``; relative difference to the SVD ≤ 5e-9 (Gaussian test
  matrices), ≤ 5e-14 on α, x_min and D of trained MLPs. Tiny negative eigenvalues of a
  rank-deficient Gram matrix (which the fit drops anyway) are clipped at 0.
* **x_min search**: α of every candidate from one suffix cumulative sum of the centred log
  eigenvalues (``Σ_{j≥i} log x_j − n log x_i``; centring on log λmax keeps the top candidates'
  sums accurate). The KS distances of all candidates of up to 1024 eigenvalues (and of all ESDs
  of the same length) are one broadcast ``candidates × eigenvalues`` torch array, in blocks.
  Above 1024 eigenvalues (FARMS ESDs, wide conv layers) an exact branch-and-bound: on a strided
  subset of each candidate's tail the KS statistic gives a lower bound, and — both CDFs being
  nondecreasing — the gaps between the samples give an upper bound (tightened by the exact D of
  the most promising candidate); candidates whose lower bound exceeds the best bound cannot win
  and are dropped, the survivors are refined with strides 256, 64, 16, 4 and finally evaluated
  exactly. The winner (first index on ties) is the full search's; its D equal up to rounding.
  An 8000-eigenvalue FARMS ESD: 20–30 ms instead of 2 s.

FARMS α (``farms_alpha``; Fixed-Aspect-Ratio Matrix Subsampling, reference code
HUST-AI-HYZ/FARMS ``Image_Classification/sampling.py`` and ``tempbalance_farms.py``):

* **Linear** (``fixed_sampling``): on the PyTorch-oriented weight (out × in, not transposed), a
  regular grid of overlapping ``r × int(r·Q)`` windows, steps ``max(1, (rows − r)//(ops − 1))``
  and ``max(1, (cols − c)//(ops − 1))``, at most ``ops`` windows per dimension, the last start
  clipped to ``rows − r`` (``cols − c``); the squared singular values of all windows are pooled
  into one ESD and one fit. Image-classification defaults ``r = 100, Q = 1, ops = 9``. When the
  matrix is smaller than the window, ``r = min(r, rows, ⌊cols/Q⌋)`` — *why*: the reference code
  then slices from a negative start (Python wraps it) and silently takes a smaller, ragged
  window; the largest window that fits keeps the fixed aspect ratio FARMS is about.
* **Conv2d** (``net_esd_estimator``, sliding-window branch): WW's per-kernel-position slices
  (rows ≥ cols), each cut into ``rows // cols`` non-overlapping square ``cols × cols`` blocks
  (for Q ≠ 1 the reference's ``cols//Q × cols`` or ``cols × cols//(1/Q)``), scaled by √(1/2);
  block i of every kernel position pooled into one ESD; one fit per block; the layer's
  ``farms_alpha`` is the mean over blocks (blocks whose fit fails are left out).
* **Fit**: by default (``farms_fit="ks"``) the WW-style KS x_min search above (eigenvalues
  ≤ 1e-5 dropped), *not* FARMS's default "median" fit (x_min = median eigenvalue, no search) —
  *why*: one fit for every α in this module, so the FARMS-vs-plain difference is the sampling
  alone. FARMS α values are therefore not on the FARMS paper's scale; ``df.attrs["farms"]``
  records the fit (``"weightwatcher-ks"`` or ``"farms-median"``) and the window settings.
  A failed FARMS fit gives NaN (there is no WW convention to follow).
* **Caveat, measured**: on i.i.d. Gaussian 200 × {200, 800, 2000} matrices (12 seeds) the FARMS
  ESD is the same for every aspect ratio — the median fit gives α = 2.12 for all three (plain
  median-fit α: 2.1 → 4.9) — but the KS search on a *bounded* ESD locks onto its hard upper
  edge: KS-fitted FARMS α is 29–46 (medians) and noisy (15–73 per draw), so its max − min
  across the aspect ratios was smaller than plain α's (5.9 → 12.1) in only 1 of 12 draws.
  ``farms_fit="median"`` reproduces FARMS's aspect-ratio independence; the KS default does
  not on pure noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

EVALS_THRESH = 1e-5  # WW constants.EVALS_THRESH: eigenvalues at or below are not fitted
MIN_EVALS = 8  # WW DEFAULT_MIN_EVALS (the code's value; its docstring says 10)
MAX_EVALS = 15000  # WW DEFAULT_MAX_EVALS
MAX_N = 50000  # WW DEFAULT_MAX_N
CONV_EIG_SCALE = 0.5  # WW conv2d_norm: slices × √(1/2)
SMALL_N = 20  # WW_powerlaw.SMALL_N_CUTOFF
SMALL_N_MIN_TAIL = 8  # fit_powerlaw_smallN k_min
SMALL_N_MIN_LOGSUM = 1e-12  # fit_powerlaw_smallN: Σ log(x/x_min) at or below is degenerate
FARMS_WINDOW = 100  # FARMS image-classification defaults: r, Q, ops
FARMS_Q = 1.0
FARMS_OPS = 9
FARMS_FITS = {"ks": "weightwatcher-ks", "median": "farms-median"}  # farms_fit → attrs label

FULL_KS_MAX_N = 1024  # above: branch-and-bound x_min search (the full one is O(N²) memory/time)
_BLOCK_ELEMS = 1 << 21  # elements per broadcast block (16 MiB of float64)
_GRAM_CHUNK_ELEMS = 1 << 20  # weights cast and multiplied together (8 MiB of float64: in cache)
_PRUNE_STRIDES = (256, 64, 16, 4)  # branch-and-bound sample strides, coarse to fine, then exact
_PRUNE_SLACK = 1e-12  # rounding allowance in the bound comparisons

COLUMNS = ["layer", "type", "shape", "alpha", "xmin", "ks_distance", "sigma", "num_pl_spikes",
           "lambda_max", "alpha_weighted", "stable_rank", "log_frobenius_norm",
           "log_spectral_norm", "log_alpha_norm", "num_eigenvalues", "farms_alpha"]


@dataclass(frozen=True)
class PowerLawFit:
    """WeightWatcher-style power-law fit of one ESD (``ok=False``: WW's failed fit, all −1)."""

    alpha: float
    xmin: float
    ks_distance: float
    sigma: float
    ok: bool


FAILED_FIT = PowerLawFit(-1.0, -1.0, -1.0, -1.0, False)


# ----------------------------------------------------------------------------------------------
# eigenvalues


def _gram(a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrices of the smaller side of a float64 ``(B, p, q)`` stack: ``(B, k, k)``."""
    return torch.matmul(a.mT, a, out=out) if a.shape[-2] > a.shape[-1] else \
        torch.matmul(a, a.mT, out=out)


def squared_singular_values(mats: torch.Tensor) -> torch.Tensor:
    """``svdvals(A)²`` (ascending, float64, ≥ 0) of every matrix of a ``(B, p, q)`` stack.

    The float64 Gram matrices of the smaller side and one batched ``eigvalsh``.
    """
    return torch.linalg.eigvalsh(_gram(mats.to(torch.float64))).clamp_min_(0.0)


def _chunks(parts: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive stacks grouped up to ``_GRAM_CHUNK_ELEMS`` elements per group."""
    chunks: list[list[torch.Tensor]] = []
    size = 0
    for m in parts:
        if chunks and size + m.numel() <= _GRAM_CHUNK_ELEMS:
            chunks[-1].append(m)
            size += m.numel()
        else:
            chunks.append([m])
            size = m.numel()
    return chunks


@dataclass(frozen=True)
class _Slot:
    """Rows ``start:stop`` of the eigenvalues of the queued matrices of shape ``key``."""

    key: tuple[int, int]
    start: int
    stop: int


class _EigenJobs:
    """Collects matrices; computes all their eigenvalues with one batched call per matrix shape.

    The queued float32 stacks are cast to float64 and multiplied in chunks of ≤ 8 MiB, written
    straight into that shape's batch: cast and product stay in cache (measured: 25% faster than
    casting all weights into one float64 stack first and multiplying that). One ``eigvalsh`` per
    shape rather than per Gram size: a 120-matrix batch was 8% slower than two of 60.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int], list[torch.Tensor]] = {}
        self._rows: dict[tuple[int, int], int] = {}
        self.values: dict[tuple[int, int], np.ndarray] = {}

    def add(self, mats: torch.Tensor) -> _Slot:
        """Queue a ``(b, p, q)`` stack; returns where its eigenvalue rows will be."""
        key = (int(mats.shape[-2]), int(mats.shape[-1]))
        start = self._rows.get(key, 0)
        self._parts.setdefault(key, []).append(mats)
        self._rows[key] = start + len(mats)
        return _Slot(key, start, start + len(mats))

    def stacks(self) -> list[torch.Tensor]:
        """The queued matrices as float64 stacks, one per matrix shape (the benchmark's floor)."""
        return [torch.cat(parts).to(torch.float64) for parts in self._parts.values()]

    def run(self) -> None:
        for key, parts in self._parts.items():
            k = min(key)
            grams = torch.empty((self._rows[key], k, k), dtype=torch.float64)
            start = 0
            for chunk in _chunks(parts):
                a = (chunk[0] if len(chunk) == 1 else torch.cat(chunk)).to(torch.float64)
                _gram(a, out=grams[start:start + len(a)])
                start += len(a)
            self.values[key] = torch.linalg.eigvalsh(grams).clamp_min_(0.0).numpy()
        self._parts.clear()

    def get(self, slot: _Slot) -> np.ndarray:
        """The eigenvalues of the slot's matrices, one row per matrix (each ascending)."""
        return self.values[slot.key][slot.start:slot.stop]


# ----------------------------------------------------------------------------------------------
# layers and WeightWatcher's dimension rules


def _weight(module: nn.Module) -> torch.Tensor:
    """The weight as WW reads it: float32 on the CPU (float64 from the Gram matrix on)."""
    return module.weight.detach().to("cpu").float()


def _ww_dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """WW's ``(N, M, rf)`` of a weight, including its conv N/M swap quirk (module docstring)."""
    if len(shape) == 2:
        return max(shape), min(shape), 1
    out, inp, kh, kw = shape
    rf = kh * kw
    if out + inp >= kh + kw and out < inp and rf % 2 == 1:
        return inp, out, rf
    return out, inp, rf


def _skip_reason(shape: tuple[int, ...], min_evals: int, max_evals: int, max_n: int) -> str | None:
    """Why WW's ``layer_supported`` (pool=True) rejects the layer, or None."""
    n, m, rf = _ww_dims(shape)
    if min_evals and m * rf < min_evals:
        return f"M·rf = {m * rf} < min_evals = {min_evals}"
    if max_evals and m * rf > max_evals:
        return f"M·rf = {m * rf} > max_evals = {max_evals}"
    if n > max_n:
        return f"N = {n} > max_N = {max_n}"
    return None


def _conv_slices(w: torch.Tensor) -> torch.Tensor:
    """WW's per-kernel-position ``(out × in)`` slices of a conv weight, ``(kh·kw, out, in)``."""
    out, inp, kh, kw = w.shape
    return w.permute(2, 3, 0, 1).reshape(kh * kw, out, inp)


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


@dataclass
class _LayerPlan:
    """One analysed layer: where its ESD's (and FARMS ESDs') eigenvalues will be."""

    name: str
    kind: str
    shape: str
    main: _Slot
    scale: float
    farms: list[_Slot] = field(default_factory=list)


def _plan_model(model: nn.Module, jobs: _EigenJobs, *, farms: bool, farms_window: int,
                farms_q: float, farms_ops: int, min_evals: int, max_evals: int,
                max_n: int) -> tuple[list[_LayerPlan], list[dict[str, str]]]:
    """Queue the eigenvalue work of every analysed layer; the skipped layers with WW's reason."""
    plans: list[_LayerPlan] = []
    skipped: list[dict[str, str]] = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        shape = tuple(int(s) for s in module.weight.shape)
        reason = _skip_reason(shape, min_evals, max_evals, max_n)
        if reason is not None:
            skipped.append({"layer": name, "reason": reason})
            continue
        w = _weight(module)
        shape_str = "x".join(str(s) for s in shape)
        if w.dim() == 2:
            plan = _LayerPlan(name, "linear", shape_str, jobs.add(w[None]), 1.0)
            if farms:
                plan.farms.append(jobs.add(_farms_linear_windows(w, farms_window, farms_q,
                                                                 farms_ops)))
        else:
            slices = _conv_slices(w)
            plan = _LayerPlan(name, "conv2d", shape_str, jobs.add(slices), CONV_EIG_SCALE)
            if farms:
                blocks = _farms_conv_blocks(slices, farms_q)
                first = jobs.add(blocks.reshape(-1, *blocks.shape[2:]))
                per = blocks.shape[1]
                plan.farms = [_Slot(first.key, first.start + b * per, first.start + (b + 1) * per)
                              for b in range(blocks.shape[0])]
        plans.append(plan)
    return plans, skipped


def _pooled(jobs: _EigenJobs, slot: _Slot, scale: float) -> np.ndarray:
    """The slot's eigenvalues pooled into one ascending ESD, times ``scale``."""
    rows = jobs.get(slot)
    esd = rows[0] if len(rows) == 1 else np.sort(rows, axis=None)
    return esd * scale if scale != 1.0 else esd


# ----------------------------------------------------------------------------------------------
# power-law fit (WeightWatcher's WWFit, vectorized)


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
    """FARMS's "median" fit of an ascending ESD (> EVALS_THRESH): x_min = the median eigenvalue.

    ``i = int(N/2)``, α by the same MLE over the top ``N − i`` values, D its KS distance; no
    search (FARMS ``analysis_esd`` with ``fix_fingers='median'``, ``xmin_pos=2``).
    """
    n_ev = len(x)
    if n_ev < 2:
        return FAILED_FIT
    i = n_ev // 2
    n = float(n_ev - i)
    logx = np.log(x)
    with np.errstate(divide="ignore"):
        alpha = 1.0 + n / (np.sum(logx[i:]) - n * logx[i])
    if not np.isfinite(alpha) or alpha <= 1.0:
        return FAILED_FIT
    d = np.max(np.abs(1.0 - (x[i:] / x[i]) ** (1.0 - alpha) - np.arange(n) / n))
    return PowerLawFit(float(alpha), float(x[i]), float(d), float((alpha - 1.0) / math.sqrt(n)),
                       True)


def _fit_many(esds: list[np.ndarray], method: str = "ks") -> list[PowerLawFit]:
    """Fits of many ascending ESDs; with the KS search, equal fitted lengths are fitted together."""
    tails = [e[e > EVALS_THRESH] for e in esds]
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

    ``method="ks"``: WeightWatcher 0.7.7's x_min search (module docstring); ``"median"``: FARMS's
    default fit, x_min = the median eigenvalue (:func:`_median_fit`).
    """
    if method not in FARMS_FITS:
        raise ValueError(f"fit method must be one of {sorted(FARMS_FITS)}, got {method!r}")
    esd = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    return _fit_many([esd], method)[0]


# ----------------------------------------------------------------------------------------------
# metrics


def _norm_metrics(esd: np.ndarray, fit: PowerLawFit) -> dict[str, float]:
    """WW's ``apply_norm_metrics`` (over all eigenvalues) plus ``num_pl_spikes``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        total = float(esd.sum())
        lmax = float(esd[-1])
        log_lmax = math.log10(lmax) if lmax > 0 else -math.inf
        return {
            "num_pl_spikes": int(np.count_nonzero(esd >= fit.xmin)) if fit.ok else -1,
            "lambda_max": lmax,
            "alpha_weighted": fit.alpha * log_lmax,
            "stable_rank": total / lmax if lmax > 0 else math.nan,
            "log_frobenius_norm": math.log10(total) if total > 0 else -math.inf,
            "log_spectral_norm": log_lmax,
            "log_alpha_norm": float(np.log10(np.sum(esd ** fit.alpha))),
            "num_eigenvalues": int(len(esd)),
        }


def _frames(rows: list[dict], counts: list[int], skipped: list[list[dict[str, str]]],
            farms_attrs: dict) -> list[pd.DataFrame]:
    """One frame per model, sliced from one frame of all rows (pandas builds 16-column frames
    slowly: ~0.5 ms each, more than the fits of a small model)."""
    everything = pd.DataFrame({c: [r[c] for r in rows] for c in COLUMNS})
    frames, start = [], 0
    for count, skip in zip(counts, skipped, strict=True):
        df = everything.iloc[start:start + count].set_axis(pd.RangeIndex(count))
        df.attrs = {"skipped": skip, "farms": dict(farms_attrs)}
        frames.append(df)
        start += count
    return frames


def analyze_many(models: list[nn.Module], *, farms: bool = True, farms_window: int = FARMS_WINDOW,
                 farms_q: float = FARMS_Q, farms_ops: int = FARMS_OPS, farms_fit: str = "ks",
                 min_evals: int = MIN_EVALS, max_evals: int = MAX_EVALS,
                 max_n: int = MAX_N) -> list[pd.DataFrame]:
    """:func:`analyze` of every model, with one batched eigenvalue call per matrix shape.

    The same layer of every model, every conv slice and every FARMS window are stacked by shape
    (see :func:`squared_singular_values`); ESDs of equal length are fitted together.
    ``farms_fit``: ``"ks"`` (default, WeightWatcher's search) or ``"median"`` (FARMS's own).
    """
    bad = farms_ops < 2 or farms_window < 1 or farms_q <= 0 or farms_fit not in FARMS_FITS
    if farms and bad:
        raise ValueError(f"FARMS needs ops ≥ 2, r ≥ 1, Q > 0, fit in {sorted(FARMS_FITS)}; got "
                         f"ops={farms_ops}, r={farms_window}, Q={farms_q}, fit={farms_fit!r}")
    jobs = _EigenJobs()
    with torch.no_grad():
        planned = [_plan_model(m, jobs, farms=farms, farms_window=farms_window, farms_q=farms_q,
                               farms_ops=farms_ops, min_evals=min_evals, max_evals=max_evals,
                               max_n=max_n) for m in models]
        jobs.run()
    layers = [p for plans, _ in planned for p in plans]
    esds = [_pooled(jobs, p.main, p.scale) for p in layers]
    fits = _fit_many(esds)
    farms_alpha = _farms_alphas(jobs, layers, farms_fit) if farms else [math.nan] * len(layers)
    farms_attrs = ({"fit": FARMS_FITS[farms_fit], "r": farms_window, "Q": farms_q,
                    "ops": farms_ops} if farms else {})
    rows = [{"layer": p.name, "type": p.kind, "shape": p.shape, "alpha": f.alpha, "xmin": f.xmin,
             "ks_distance": f.ks_distance, "sigma": f.sigma, **_norm_metrics(e, f),
             "farms_alpha": fa}
            for p, e, f, fa in zip(layers, esds, fits, farms_alpha, strict=True)]
    return _frames(rows, [len(plans) for plans, _ in planned], [sk for _, sk in planned],
                   farms_attrs)


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


def analyze(model: nn.Module, *, farms: bool = True, **options: object) -> pd.DataFrame:
    """HTSR metrics of every analysed layer of ``model``: one row per layer (module docstring).

    Columns: ``layer, type, shape, alpha, xmin, ks_distance, sigma, num_pl_spikes, lambda_max,
    alpha_weighted, stable_rank, log_frobenius_norm, log_spectral_norm, log_alpha_norm,
    num_eigenvalues, farms_alpha``. ``df.attrs["skipped"]`` lists the layers WeightWatcher's rules
    skip (``{"layer", "reason"}``); ``df.attrs["farms"]`` the FARMS settings and fit.
    ``options``: the keyword arguments of :func:`analyze_many`.
    """
    return analyze_many([model], farms=farms, **options)[0]  # type: ignore[arg-type]


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """Model-level means of the layer metrics (WW's ``get_summary`` averages over layers too)."""
    def mean(col: str) -> float:
        return float(df[col].mean()) if len(df) else math.nan

    return {
        "alpha_mean": mean("alpha"),
        "alpha_weighted_mean": mean("alpha_weighted"),
        "farms_alpha_mean": mean("farms_alpha"),
        "stable_rank_mean": mean("stable_rank"),
        "log_spectral_norm_mean": mean("log_spectral_norm"),
        "log_frobenius_norm_mean": mean("log_frobenius_norm"),
        "num_layers": float(len(df)),
    }
