"""Per-layer HT-SR metrics of models (WeightWatcher's layer rules) and model-level summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from phasezoo.htsr.farms import (
    FARMS_FITS,
    FARMS_OPS,
    FARMS_Q,
    FARMS_WINDOW,
    farms_alphas,
    farms_conv_blocks,
    farms_linear_windows,
    window_evals,
)
from phasezoo.htsr.fit import PowerLawFit, fit_many
from phasezoo.htsr.plan import LayerPlan
from phasezoo.htsr.spectra import EigenJobs, Slot, pooled

MIN_EVALS = 8  # WW DEFAULT_MIN_EVALS (the code's value; its docstring says 10)
MAX_EVALS = 15000  # WW DEFAULT_MAX_EVALS
MAX_N = 50000  # WW DEFAULT_MAX_N
CONV_EIG_SCALE = 0.5  # WW conv2d_norm: slices × √(1/2)
# A FARMS window with fewer eigenvalues than WW's layer minimum is one WW would not fit as a
# layer: such layers keep their farms_alpha but are left out of farms_alpha_mean (summarize).
FARMS_MIN_WINDOW_EVALS = MIN_EVALS
COLUMNS = ["layer", "type", "shape", "alpha", "xmin", "ks_distance", "sigma", "num_pl_spikes",
           "lambda_max", "alpha_weighted", "stable_rank", "log_frobenius_norm",
           "log_spectral_norm", "log_alpha_norm", "num_eigenvalues", "farms_alpha",
           "farms_window_evals"]


def layer_names(model: nn.Module) -> list[str]:
    """Every layer :func:`analyze` considers (``nn.Linear``, ``nn.Conv2d``), in module order.

    The zoo's per-layer list columns follow this order (skipped layers hold NaN), so a row's
    values line up with these names, which the row's ``layout`` carries as ``htsr_layers``.
    """
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _weight(module: nn.Module) -> torch.Tensor:
    """The weight as WW reads it: float32 on the CPU (float64 from the Gram matrix on)."""
    return module.weight.detach().to("cpu").float()


def _ww_dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """WW's ``(N, M, rf)`` of a weight, including its conv N/M swap quirk (docs/htsr.md)."""
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


def _plan_model(model: nn.Module, jobs: EigenJobs, *, farms: bool, farms_window: int,
                farms_q: float, farms_ops: int, min_evals: int, max_evals: int,
                max_n: int) -> tuple[list[LayerPlan], list[dict[str, str]]]:
    """Queue the eigenvalue work of every analysed layer; the skipped layers with WW's reason."""
    plans: list[LayerPlan] = []
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
            plan = LayerPlan(name, "linear", shape_str, jobs.add(w[None]), 1.0)
            if farms:
                windows = farms_linear_windows(w, farms_window, farms_q, farms_ops)
                plan.farms.append(jobs.add(windows))
                plan.farms_window_evals = window_evals(windows)
        else:
            slices = _conv_slices(w)
            plan = LayerPlan(name, "conv2d", shape_str, jobs.add(slices), CONV_EIG_SCALE)
            if farms:
                blocks = farms_conv_blocks(slices, farms_q)
                first = jobs.add(blocks.reshape(-1, *blocks.shape[2:]))
                per = blocks.shape[1]
                plan.farms_window_evals = window_evals(blocks)
                plan.farms = [Slot(first.key, first.start + b * per, first.start + (b + 1) * per)
                              for b in range(blocks.shape[0])]
        plans.append(plan)
    return plans, skipped


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
                 farms_q: float = FARMS_Q, farms_ops: int = FARMS_OPS, farms_fit: str = "median",
                 farms_filter_zeros: bool = False, min_evals: int = MIN_EVALS,
                 max_evals: int = MAX_EVALS, max_n: int = MAX_N) -> list[pd.DataFrame]:
    """:func:`analyze` of every model, with one batched eigenvalue call per matrix shape.

    The same layer of every model, every conv slice and every FARMS window are stacked by shape
    (see :func:`squared_singular_values`); ESDs of equal length are fitted together.
    ``farms_fit``: ``"median"`` (default: FARMS's own fit) or ``"ks"`` (WeightWatcher's search).
    ``farms_filter_zeros``: drop FARMS eigenvalues ≤ 1e-5 before its fit (FARMS's own option,
    off in its code as here; plain α always drops them, as WeightWatcher does).
    """
    bad = farms_ops < 2 or farms_window < 1 or farms_q <= 0 or farms_fit not in FARMS_FITS
    if farms and bad:
        raise ValueError(f"FARMS needs ops ≥ 2, r ≥ 1, Q > 0, fit in {sorted(FARMS_FITS)}; got "
                         f"ops={farms_ops}, r={farms_window}, Q={farms_q}, fit={farms_fit!r}")
    jobs = EigenJobs()
    with torch.no_grad():
        planned = [_plan_model(m, jobs, farms=farms, farms_window=farms_window, farms_q=farms_q,
                               farms_ops=farms_ops, min_evals=min_evals, max_evals=max_evals,
                               max_n=max_n) for m in models]
        jobs.run()
    layers = [p for plans, _ in planned for p in plans]
    esds = [pooled(jobs, p.main, p.scale) for p in layers]
    fits = fit_many(esds)
    farms_alpha = (farms_alphas(jobs, layers, farms_fit, farms_filter_zeros) if farms
                   else [math.nan] * len(layers))
    farms_attrs = ({"fit": FARMS_FITS[farms_fit], "r": farms_window, "Q": farms_q,
                    "ops": farms_ops, "filter_zeros": farms_filter_zeros} if farms else {})
    rows = [{"layer": p.name, "type": p.kind, "shape": p.shape, "alpha": f.alpha, "xmin": f.xmin,
             "ks_distance": f.ks_distance, "sigma": f.sigma, **_norm_metrics(e, f),
             "farms_alpha": fa, "farms_window_evals": p.farms_window_evals}
            for p, e, f, fa in zip(layers, esds, fits, farms_alpha, strict=True)]
    return _frames(rows, [len(plans) for plans, _ in planned], [sk for _, sk in planned],
                   farms_attrs)


def analyze(model: nn.Module, *, farms: bool = True, **options: object) -> pd.DataFrame:
    """HTSR metrics of every analysed layer of ``model``: one row per layer (docs/htsr.md).

    Columns: ``layer, type, shape, alpha, xmin, ks_distance, sigma, num_pl_spikes, lambda_max,
    alpha_weighted, stable_rank, log_frobenius_norm, log_spectral_norm, log_alpha_norm,
    num_eigenvalues, farms_alpha, farms_window_evals`` (eigenvalues per FARMS window, WW's M·rf
    count; NaN without FARMS). ``df.attrs["skipped"]`` lists the layers WeightWatcher's rules
    skip (``{"layer", "reason"}``); ``df.attrs["farms"]`` the FARMS settings and fit.
    ``options``: the keyword arguments of :func:`analyze_many`.
    """
    return analyze_many([model], farms=farms, **options)[0]  # type: ignore[arg-type]


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """Model-level means of the layer metrics (WW's ``get_summary`` averages over layers too).

    ``farms_alpha_mean`` leaves out layers whose FARMS windows hold fewer than
    :data:`FARMS_MIN_WINDOW_EVALS` eigenvalues (``farms_window_evals``): their α is a fit to a
    few eigenvalues per window that WW's own rule would not fit (NaN if every layer is such).
    """
    def mean(col: str, keep: pd.Series | None = None) -> float:
        values = df[col] if keep is None else df[col][keep]
        return float(values.mean()) if len(values) else math.nan

    farms_ok = df["farms_window_evals"] >= FARMS_MIN_WINDOW_EVALS

    return {
        "alpha_mean": mean("alpha"),
        "alpha_weighted_mean": mean("alpha_weighted"),
        "farms_alpha_mean": mean("farms_alpha", farms_ok),
        "stable_rank_mean": mean("stable_rank"),
        "log_spectral_norm_mean": mean("log_spectral_norm"),
        "log_frobenius_norm_mean": mean("log_frobenius_norm"),
        "num_layers": float(len(df)),
    }
