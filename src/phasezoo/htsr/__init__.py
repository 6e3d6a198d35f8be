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
  into one ESD and one fit. Image-classification defaults ``r = 100, Q = 1, ops = 9``. A
  dimension shorter than its window is sliced as the reference's Python slice does it, from
  the negative start ``size − r``: all of a dimension up to r/2 long (32 × 784 gives 9 windows
  of 32 × 100), but only its last ``r − size`` entries between r/2 and r (80 rows give 20):
  odd, and reproduced as written, so FARMS α means what the reference code computes.
* **Conv2d** (``net_esd_estimator``, sliding-window branch): WW's per-kernel-position slices
  (rows ≥ cols), each cut into ``rows // cols`` non-overlapping square ``cols × cols`` blocks
  (for Q ≠ 1 the reference's ``cols//Q × cols`` or ``cols × cols//(1/Q)``), scaled by √(1/2);
  block i of every kernel position pooled into one ESD; one fit per block; the layer's
  ``farms_alpha`` is the mean over blocks (blocks whose fit fails are left out).
* **Fit**: by default (``farms_fit="median"``) FARMS's own fit: x_min = the median eigenvalue,
  MLE α over the top half, no KS search (the FARMS reference code's default for image models),
  on every eigenvalue (the reference's ``filter_zeros=False``; ``farms_filter_zeros=True`` drops
  those ≤ 1e-5 first, as plain α does).
  *Why not the WW-style KS search used for plain α*: on a bounded ESD the KS search locks onto
  its hard upper edge (see the caveat below), so KS-fitted FARMS α does not show the
  aspect-ratio independence that is FARMS's point. ``farms_fit="ks"`` is available.
  FARMS α values are therefore on the FARMS paper's scale, not WeightWatcher's;
  ``df.attrs["farms"]`` records the fit (``"farms-median"`` or ``"weightwatcher-ks"``) and the
  window settings, and the zoo card repeats them. A failed FARMS fit gives NaN.
* **Caveat, measured**: on i.i.d. Gaussian 200 × {200, 800, 2000} matrices (12 seeds) the FARMS
  ESD is the same for every aspect ratio — the median fit gives α = 2.12 for all three (plain
  median-fit α: 2.1 → 4.9) — but the KS search on a *bounded* ESD locks onto its hard upper
  edge: KS-fitted FARMS α is 29–46 (medians) and noisy (15–73 per draw), so its max − min
  across the aspect ratios was smaller than plain α's (5.9 → 12.1) in only 1 of 12 draws.
  ``farms_fit="median"`` reproduces FARMS's aspect-ratio independence; the KS fit does not on
  pure noise (both are tested in ``tests/test_htsr.py``).
"""

from phasezoo.htsr.analysis import (
                                    COLUMNS,
                                    CONV_EIG_SCALE,
                                    MAX_EVALS,
                                    MAX_N,
                                    MIN_EVALS,
                                    analyze,
                                    analyze_many,
                                    layer_names,
                                    summarize,
)
from phasezoo.htsr.farms import FARMS_FITS, FARMS_OPS, FARMS_Q, FARMS_WINDOW
from phasezoo.htsr.fit import EVALS_THRESH, FAILED_FIT, PowerLawFit, fit_power_law
from phasezoo.htsr.spectra import squared_singular_values

__all__ = ["COLUMNS", "CONV_EIG_SCALE", "EVALS_THRESH", "FAILED_FIT", "FARMS_FITS", "FARMS_OPS",
           "FARMS_Q", "FARMS_WINDOW", "MAX_EVALS", "MAX_N", "MIN_EVALS", "PowerLawFit", "analyze",
           "analyze_many", "fit_power_law", "layer_names", "squared_singular_values", "summarize"]
