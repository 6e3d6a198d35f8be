"""Loss-landscape metrics between and around trained models.

This module holds what compares models of one cell: linear CKA between two seeds' logits and
the loss along the straight line between two seeds' weights (the linear-interpolation barrier).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from phasezoo.checkpoints import Population, read_population
from phasezoo.data import Split
from phasezoo.evaluation import evaluate, logits_of


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) between two (samples × features) representations.

    Computed in float64 from the feature-space form ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) after centring
    each feature, which equals the Gram-matrix HSIC form and costs O(n·d²) instead of O(n²).
    """
    x = x.double() - x.double().mean(dim=0, keepdim=True)
    y = y.double() - y.double().mean(dim=0, keepdim=True)
    num = torch.linalg.matrix_norm(y.T @ x) ** 2
    den = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(num / den) if den > 0 else float("nan")


def interpolate(a: nn.Module, b: nn.Module, t: float) -> nn.Module:
    """A copy of ``a`` with weights (1 − t)·θ_a + t·θ_b (every float state entry interpolated)."""
    sa, sb = a.state_dict(), b.state_dict()
    state = {k: (1 - t) * sa[k] + t * sb[k] if sa[k].is_floating_point() else sa[k] for k in sa}
    model = copy.deepcopy(a)
    model.load_state_dict(state)
    return model.eval()


def interpolation_barrier(a: nn.Module, b: nn.Module, split: Split, points: int,
                          batch_size: int) -> dict[str, float]:
    """Train-error barrier along the straight line between two models, in the ``mc`` convention.

    ``barrier = ½(E(θ0) + E(θ1)) − E(θ_t*)`` with ``t* = argmax_t |E(θ_t) − ½(E(θ0)+E(θ1))|``
    over ``points`` evenly spaced t, E = train error in %. Negative = a barrier between the
    seeds; ≈ 0 = linearly connected. (Mode connectivity along a trained Bezier curve is the
    stricter version of the same quantity.)
    """
    errors = []
    for t in np.linspace(0.0, 1.0, points):
        _, acc = evaluate(interpolate(a, b, float(t)), split.x_train, split.y_train,
                          batch_size)
        errors.append(100.0 * (1.0 - acc))
    errors = np.array(errors)
    mid = 0.5 * (errors[0] + errors[-1])
    t_star = int(np.argmax(np.abs(errors - mid)))
    return {"linear_barrier": float(mid - errors[t_star]),
            "linear_barrier_t": float(t_star / (points - 1))}


def pair_rows(pop: Population, split: Split, epoch_index: int, cfg: dict,
              progress: bool = True) -> pd.DataFrame:
    """CKA and linear barrier for every seed pair of a cell at one kept epoch."""
    bs, epoch = pop.hparams["eval_batch_size"], int(pop.kept_epochs[epoch_index])
    x_cka = split.x_test[: cfg["cka_samples"]]
    live = [i for i in range(len(pop.seeds)) if not pop.diverged_at(i, epoch)]
    rows = []
    for i, j in tqdm(list(itertools.combinations(range(len(pop.seeds)), 2)),
                     desc=f"pairs {pop.cell}", unit="pair", disable=not progress):
        row = {"cell": pop.cell, "epoch": epoch, "seed_a": int(pop.seeds[i]),
               "seed_b": int(pop.seeds[j]), "cka": float("nan"),
               "linear_barrier": float("nan"), "linear_barrier_t": float("nan")}
        if i in live and j in live:
            a, b = pop.model(i, epoch_index), pop.model(j, epoch_index)
            row["cka"] = linear_cka(logits_of(a, x_cka, bs), logits_of(b, x_cka, bs))
            row |= interpolation_barrier(a, b, split, cfg["interpolation_points"], bs)
        rows.append(row)
    return pd.DataFrame(rows)


def cell_pairs(train_h5: str | Path, split: Split, cfg: dict, progress: bool = True) -> pd.DataFrame:
    """The pairs table of one cell (``pairs.parquet``) at ``cfg['landscape_epoch']``.

    Raises:
        ValueError: if the landscape epoch is not a kept epoch.
    """
    pop = read_population(train_h5)
    epoch = cfg["landscape_epoch"]
    kept = [int(e) for e in pop.kept_epochs]
    if epoch == -1:
        epoch = kept[-1]
    if epoch not in kept:
        raise ValueError(f"metrics.landscape_epoch={epoch} is not a kept epoch {kept}")
    return pair_rows(pop, split, kept.index(epoch), cfg, progress)
