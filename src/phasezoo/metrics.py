"""Per-checkpoint metrics of a cell: one row per (model, kept epoch).

Metrics are registered functions ``fn(model, split, ctx) -> {column: value}``, so the landscape
and HT-SR metrics plug in as one function each. The topological landscape profile and the local
learning coefficient run only at the landscape epoch (NaN elsewhere). A diverged checkpoint gets NaN in every metric column and is
never evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from phasezoo import htsr
from phasezoo.checkpoints import Population, open_population
from phasezoo.data import Split
from phasezoo.evaluation import evaluate
from phasezoo.landscape.hessian import hessian_summary, sample_batches
from phasezoo.recipe import Recipe
from phasezoo.vocabulary import landscape_epoch_of
from phasezoo.settings import MetricsSettings
from phasezoo.weights import skeleton

if TYPE_CHECKING:
    from phasezoo.landscape.llc import SGLDConfig


@dataclass
class Context:
    """What a metric may use besides the model: the cell's recipe, the zoo's ``metrics``
    settings, and the fixed Hessian samples (drawn once per cell, shared by all checkpoints): the
    training sample (trace, topological profile) and, where ``hessian_top_data`` is ``test``
    (PTMZ's published λmax), a test sample for λmax; ``None`` when λmax uses the training one."""

    recipe: Recipe
    settings: MetricsSettings
    hessian_batches: list[tuple[torch.Tensor, torch.Tensor]]
    hessian_top_batches: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @classmethod
    def for_cell(cls, recipe: Recipe, settings: MetricsSettings, split: Split) -> "Context":
        """Draw the cell's Hessian samples: seeded by ``hessian_seed``, so every checkpoint and
        every rerun sees the same examples."""
        batches = sample_batches(split.x_train, split.y_train, settings.hessian_batches,
                                 settings.hessian_batch_size, settings.hessian_seed)
        top = None
        if settings.hessian_top_data == "test":
            top = sample_batches(split.x_test, split.y_test, settings.hessian_batches,
                                 settings.hessian_batch_size, settings.hessian_seed)
        return cls(recipe, settings, batches, top)


MetricFn = Callable[[nn.Module, Split, Context], dict[str, float]]
_METRICS: dict[str, MetricFn] = {}
_COLUMNS: dict[str, tuple[str, ...]] = {}


def register_metric(*columns: str) -> Callable[[MetricFn], MetricFn]:
    """Register a checkpoint metric that returns exactly ``columns``."""
    def deco(fn: MetricFn) -> MetricFn:
        _METRICS[fn.__name__] = fn
        _COLUMNS[fn.__name__] = columns
        return fn
    return deco


def list_metrics() -> list[str]:
    """Names of the registered checkpoint metrics."""
    return list(_METRICS)


def metric_columns() -> list[str]:
    """Every column the registered metrics produce, in registration order."""
    return [c for cols in _COLUMNS.values() for c in cols]


@register_metric("train_loss", "train_accuracy", "test_loss", "test_accuracy")
def performance(model: nn.Module, split: Split, ctx: Context) -> dict[str, float]:
    """Loss and score on the cell's training data and on the test split: cross-entropy and
    accuracy, or the task's loss and score (:mod:`phasezoo.tasks`)."""
    bs = ctx.recipe.train.eval_batch_size
    tr_loss, tr_acc = evaluate(model, split.x_train, split.y_train, bs, split.task)
    te_loss, te_acc = evaluate(model, split.x_test, split.y_test, bs, split.task)
    return {"train_loss": tr_loss, "train_accuracy": tr_acc,
            "test_loss": te_loss, "test_accuracy": te_acc}


@register_metric("l2_norm", "num_parameters")
def norms(model: nn.Module, split: Split, ctx: Context) -> dict[str, float]:
    """Euclidean norm of all trainable parameters, and their count."""
    params = [p.detach() for p in model.parameters()]
    return {"l2_norm": math.sqrt(sum(float((p.double() ** 2).sum()) for p in params)),
            "num_parameters": float(sum(p.numel() for p in params))}


@register_metric("hessian_top_eigenvalue", "hessian_trace", "hessian_trace_stderr", "hessian_hvps")
def hessian(model: nn.Module, split: Split, ctx: Context) -> dict[str, float]:
    """λmax (Lanczos) of the loss Hessian on the ``hessian_top_data`` sample and trace (deflated
    Hutchinson) on the training sample; ``hessian_hvps`` counts both runs."""
    s = ctx.settings
    out = hessian_summary(model, split.task, ctx.hessian_batches, tol=s.hessian_tol,
                          trace_tol=s.hessian_trace_tol, max_iter=s.hessian_max_iter,
                          seed=s.hessian_seed, top_batches=ctx.hessian_top_batches)
    return {"hessian_top_eigenvalue": out.top_eigenvalue, "hessian_trace": out.trace,
            "hessian_trace_stderr": out.trace_stderr, "hessian_hvps": float(out.hvps)}


HTSR_COLUMNS = ("alpha_mean", "alpha_weighted_mean", "farms_alpha_mean", "stable_rank_mean",
                "log_spectral_norm_mean", "log_frobenius_norm_mean")
# analyze() column → per-layer list column of the zoo (values in htsr.layer_names order).
HTSR_LAYER_COLUMNS = {"alpha": "layer_alpha", "farms_alpha": "layer_farms_alpha",
                      "alpha_weighted": "layer_alpha_weighted", "stable_rank": "layer_stable_rank",
                      "log_spectral_norm": "layer_log_spectral_norm",
                      "log_frobenius_norm": "layer_log_frobenius_norm",
                      "farms_window_evals": "layer_farms_window_evals"}


def htsr_columns(models: list[nn.Module], settings: MetricsSettings) -> list[dict[str, object]]:
    """HT-SR aggregates and per-layer lists of many models, with one batched analysis.

    Why a population pass and not a per-model metric: the same layer of every checkpoint of a
    cell, and FARMS's windows, go through one batched eigensolve per matrix shape
    (:func:`phasezoo.htsr.analyze_many`). Per-layer lists follow :func:`phasezoo.htsr.layer_names`;
    a layer that WeightWatcher's rules skip (too few eigenvalues) or whose fit fails holds NaN.
    """
    if not models:
        return []
    names = htsr.layer_names(models[0])
    out = []
    for df in htsr.analyze_many(models, farms=settings.farms, farms_fit=settings.farms_fit,
                                farms_filter_zeros=settings.farms_filter_zeros):
        failed = df["alpha"] == -1  # WeightWatcher's marker of a failed fit: not an exponent
        df.loc[failed, ["alpha", "alpha_weighted"]] = math.nan
        summary = htsr.summarize(df)
        by_layer = df.set_index("layer")
        row: dict[str, object] = {c: summary[c] for c in HTSR_COLUMNS}
        for col, name in HTSR_LAYER_COLUMNS.items():
            row[name] = [float(by_layer[col][n]) if n in by_layer.index else math.nan
                         for n in names]
        out.append(row)
    return out


# The topological landscape profile's summary (phasezoo.persistence.profile_summary) and
# the two eigenvalues whose eigenvectors span its plane; ``topo_plane`` holds the grid itself.
TOPOLOGY_COLUMNS = ("topo_minima", "topo_total_persistence", "topo_max_persistence",
                    "topo_mean_gap", "topo_loss_min", "topo_loss_range", "topo_eigenvalue_1",
                    "topo_eigenvalue_2")
TOPOLOGY_PLANE = "topo_plane"


def topology_columns(model: nn.Module, split: Split, ctx: Context) -> dict[str, object]:
    """The topological landscape profile of one checkpoint (run at the landscape epoch only:
    ``topology_steps``² loss passes over the Hessian sample). ``topo_plane`` is the loss grid
    row-major, ``[a, b]`` at θ + a·v₁ + b·v₂ over ±``topology_radius``·‖θ‖ on each axis."""
    from phasezoo.landscape.topology import hessian_plane
    from phasezoo.persistence import profile_summary

    s = ctx.settings
    grid, _, values = hessian_plane(model, split.task, ctx.hessian_batches, s.topology_steps,
                                    s.topology_radius, s.topology_max_iter, s.hessian_seed)
    return (profile_summary(grid) | {"topo_eigenvalue_1": float(values[0]),
                                     "topo_eigenvalue_2": float(values[1]),
                                     TOPOLOGY_PLANE: grid.ravel().tolist()})


# The local learning coefficient and its estimator's diagnostics (LLCEstimate.columns).
LLC_COLUMNS = ("llc", "llc_std", "llc_nbeta", "llc_chains", "llc_steps", "llc_drift",
               "llc_unsettled")


def llc_config(settings: MetricsSettings) -> "SGLDConfig":
    """The SGLD sampler of the zoo's ``metrics.llc_*`` keys."""
    from phasezoo.landscape.llc import SGLDConfig

    return SGLDConfig(epsilon=settings.llc_epsilon, nbeta=settings.llc_nbeta,
                      gamma=settings.llc_gamma, chains=settings.llc_chains,
                      steps=settings.llc_steps, burnin=settings.llc_burnin,
                      batch_size=settings.llc_batch_size)


def llc_columns(model: nn.Module, split: Split, ctx: Context) -> dict[str, float]:
    """λ̂ of one checkpoint on the cell's training data (run at the landscape epoch only:
    ``llc_chains`` × (``llc_burnin`` + ``llc_steps``) SGLD steps); the batch order and every
    chain's noise are seeded from ``hessian_seed``, the same for every checkpoint of the zoo."""
    from phasezoo.landscape.llc import estimate_llc

    return estimate_llc(model, split.task, split.x_train, split.y_train,
                        llc_config(ctx.settings), seed=ctx.settings.hessian_seed).columns()


def all_columns() -> list[str]:
    """Every metric column of ``metrics.parquet``: the per-model metrics, the HT-SR ones, the
    topological profile's, then the local learning coefficient's."""
    return (metric_columns() + list(HTSR_COLUMNS) + list(HTSR_LAYER_COLUMNS.values())
            + list(TOPOLOGY_COLUMNS) + [TOPOLOGY_PLANE] + list(LLC_COLUMNS))


HTSR_CHUNK_VALUES = 50_000_000  # weights held for one batched HT-SR pass (200 MB of float32)


def checkpoint_rows(pop: Population, split: Split, device: torch.device, settings: MetricsSettings,
                    progress: bool = True) -> pd.DataFrame:
    """Every registered metric on every kept checkpoint of ``pop``; HT-SR in batched passes over
    consecutive live checkpoints (up to :data:`HTSR_CHUNK_VALUES` weights per pass, so a cell of
    large models is never held in memory at once)."""
    ctx = Context.for_cell(pop.recipe, settings, split)
    landscape = landscape_epoch_of([int(e) for e in pop.kept_epochs], settings.landscape_epoch)
    rows: list[dict] = []
    pending: list[tuple[int, nn.Module]] = []  # live checkpoints awaiting their HT-SR pass

    def flush() -> None:
        for (r, _), cols in zip(pending, htsr_columns([m for _, m in pending], settings),
                                strict=True):
            rows[r] |= cols
        pending.clear()

    for i, k, epoch in tqdm(list(pop.checkpoints()), desc=f"metrics {pop.cell}",
                            unit="ckpt", disable=not progress):
        row = {"model_id": pop.model_id(i), "seed": int(pop.seeds[i]), "epoch": epoch,
               "diverged": pop.diverged_at(i, epoch)}
        if not row["diverged"]:
            model = pop.model(i, k).to(device)
            for fn in _METRICS.values():
                row |= fn(model, split, ctx)
            if epoch == landscape and settings.topology:
                row |= topology_columns(model, split, ctx)
            if epoch == landscape and settings.llc_steps:
                row |= llc_columns(model, split, ctx)
            pending.append((len(rows), model))
            if sum(_num_values(m) for _, m in pending) >= HTSR_CHUNK_VALUES:
                flush()
        rows.append(row)
    flush()
    blank = _nan_row(pop)
    return pd.DataFrame([blank | r for r in rows])


def _num_values(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _nan_row(pop: Population) -> dict[str, object]:
    """Every metric column as NaN (per-layer lists as one NaN per layer): a diverged checkpoint."""
    return nan_row(len(htsr.layer_names(skeleton(pop.layout))))


def nan_row(n_layers: int) -> dict[str, object]:
    """Every metric column as NaN, per-layer lists as ``n_layers`` NaNs: a checkpoint that is not
    measured (diverged, or a rehearsal's initial weights)."""
    row: dict[str, object] = dict.fromkeys(all_columns(), math.nan)
    return row | {name: [math.nan] * n_layers for name in HTSR_LAYER_COLUMNS.values()} | {
        TOPOLOGY_PLANE: []}



def cell_metrics(train_h5: str | Path, split: Split, device: torch.device,
                 settings: MetricsSettings, progress: bool = True) -> pd.DataFrame:
    """The metrics table of one cell (``metrics.parquet``); ``settings`` = the zoo's ``metrics``."""
    with open_population(train_h5) as pop:  # one checkpoint read at a time
        return checkpoint_rows(pop, split, device, settings, progress)
