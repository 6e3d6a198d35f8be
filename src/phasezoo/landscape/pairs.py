"""The per-cell pair table: every compared seed pair at the landscape epoch (``pairs.parquet``).

Two sets of pairs: CKA's (``metrics.cka_max_pairs``) and the curves' (``max_pairs``: the linear
barrier and Bezier mode connectivity). LLT averages CKA over every seed pair but trains its curve
on pair 0-1 only, so the two differ under ``llt``; a row is kept for each pair in either set,
with NaN in the columns of the measurement its pair was not in.

Each pair draws its own random numbers (the curve's shuffles, t draws and training
augmentations, LLT's random control point, the augmented copy its path is evaluated on) from
:func:`pair_seed`, and each cell its mixup CKA batches from :func:`cell_seed`, both derived
from ``metrics.mc_seed``: one stream for the whole grid would make its error common to every
pair and cell, so pair means would not average it out.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from phasezoo.augment import augment, is_active
from phasezoo.checkpoints import Population, open_population
from phasezoo.data import Split
from phasezoo.vocabulary import landscape_epoch_of
from phasezoo.protocols import curve_epochs
from phasezoo.runtime import stream_seed
from phasezoo.settings import MetricsSettings
from phasezoo.landscape.connectivity import CurveSettings, interpolation_barrier, mode_connectivity
from phasezoo.landscape.similarity import cka_batches, pair_cka

CURVE_COLUMNS = ("linear_barrier", "linear_barrier_t", "mc", "mc_t", "mc_loss", "mc_chord",
                 "mc_peak", "mc_end_tie")
# cka_nan: 1.0 when both members are live and their CKA is NaN (a collapsed, constant output),
# 0.0 when it is finite, NaN when it was not measured (a diverged member, or not a CKA pair).
PAIR_COLUMNS = ("cka", "cka_nan", *CURVE_COLUMNS)
AUGMENT_CHUNK = 4096  # images augmented per draw table (bounds the crop's index tensors)


def pair_seed(mc_seed: int, cell: str, seed_a: int, seed_b: int) -> int:
    """The random stream of one seed pair's curve: (``metrics.mc_seed``, cell id, the members'
    seeds), so no two pairs of a zoo, nor one pair in two cells, share their numbers."""
    return stream_seed("pair", int(mc_seed), str(cell), int(seed_a), int(seed_b))


def cell_seed(mc_seed: int, cell: str) -> int:
    """The random stream of one cell's CKA batches (LLT's mixup draws): (``mc_seed``, cell id);
    shared by the cell's pairs, so their CKAs compare the same inputs."""
    return stream_seed("cka", int(mc_seed), str(cell))


def curve_settings(cfg: MetricsSettings, seed: int, data_fraction: float = 1.0,
                   spec: dict | None = None) -> CurveSettings:
    """The Bezier settings of a zoo's ``metrics`` config section (protocol keys filled), drawing
    from ``seed`` (a pair's :func:`pair_seed`), for a cell trained on ``data_fraction`` of its
    split (its epochs follow ``mc_epochs_rule``: :func:`phasezoo.protocols.curve_epochs`) with
    ``spec`` its ``train.augment``: the curve's training batches are augmented with it under
    ``mc_train_data: augmented`` when it is active, else clean (``augment=None``)."""
    epochs = curve_epochs(cfg.mc_epochs, cfg.mc_epochs_rule, data_fraction)
    train_augment = spec if cfg.mc_train_data == "augmented" and is_active(spec) else None
    return CurveSettings(epochs=epochs, lr=cfg.mc_lr, momentum=cfg.mc_momentum,
                         batch_size=cfg.mc_batch_size, points=cfg.mc_points,
                         seed=seed, weight_decay=cfg.mc_weight_decay,
                         schedule=cfg.mc_schedule, init=cfg.mc_init, augment=train_augment)


def path_inputs(split: Split, cfg: MetricsSettings, spec: dict | None,
                seed: int) -> torch.Tensor:
    """The training inputs a pair's path points are evaluated on (``mc_eval_data``): the clean
    split, or, under ``augmented`` with an active ``train.augment`` ``spec``, one augmented copy
    of it drawn from ``seed`` (the pair's stream). One copy for every point of both paths: fresh
    draws per point would add augmentation noise to the differences mc measures."""
    if cfg.mc_eval_data == "clean" or not is_active(spec):
        return split.x_train
    x = split.x_train
    chunks = [augment(x[s:s + AUGMENT_CHUNK], spec, stream_seed("mc-augment", seed, s))
              for s in range(0, len(x), AUGMENT_CHUNK)]
    return torch.cat(chunks)


def seed_pairs(n: int, max_pairs: int) -> list[tuple[int, int]]:
    """All index pairs of ``n`` seeds in order, or the first ``max_pairs`` (``-1`` = all)."""
    pairs = list(itertools.combinations(range(n), 2))
    return pairs if max_pairs < 0 else pairs[:max_pairs]


def compared_pairs(n: int, cfg: MetricsSettings) -> list[tuple[tuple[int, int], bool, bool]]:
    """Each pair of ``n`` seeds that either set takes, in order, with whether its CKA
    (``cka_max_pairs``) and its curves (``max_pairs``) are measured."""
    cka, curves = set(seed_pairs(n, cfg.cka_max_pairs)), set(seed_pairs(n, cfg.max_pairs))
    return [(p, p in cka, p in curves) for p in seed_pairs(n, -1) if p in cka or p in curves]


def pair_row(pop: Population, split: Split, i: int, j: int, k: int, cfg: MetricsSettings,
             cka_inputs: list[torch.Tensor] | None, curves: bool) -> dict:
    """CKA (on ``cka_inputs``, the cell's :func:`cka_batches`; None: not a CKA pair) and, when
    ``curves``, the linear barrier and Bezier mode connectivity of members i and j at kept
    index k, the curve drawing from the pair's own stream (:func:`pair_seed`)."""
    train = pop.recipe.train
    bs = train.eval_batch_size
    a, b = pop.model(i, k).to(split.x_train.device), pop.model(j, k).to(split.x_train.device)
    row = {}
    if cka_inputs is not None:
        cka = pair_cka(a, b, split, cka_inputs, cfg, bs)
        row |= {"cka": cka, "cka_nan": float(math.isnan(cka))}
    if curves:
        seed = pair_seed(cfg.mc_seed, pop.cell, int(pop.seeds[i]), int(pop.seeds[j]))
        x_eval = path_inputs(split, cfg, train.augment, seed)
        curve = curve_settings(cfg, seed, float(train.data_fraction), train.augment)
        row |= interpolation_barrier(a, b, split, cfg.interpolation_points, bs, x_eval)
        row |= mode_connectivity(a, b, split, curve, bs, x_eval)
    return row


def pair_rows(pop: Population, split: Split, epoch_index: int, cfg: MetricsSettings,
              progress: bool = True) -> pd.DataFrame:
    """One row per compared seed pair (:func:`compared_pairs`); a pair with a diverged member
    gets NaN metrics."""
    epoch = int(pop.kept_epochs[epoch_index])
    rows = []
    inputs = cka_batches(split, cfg, cell_seed(cfg.mc_seed, pop.cell))  # shared by the pairs
    for (i, j), cka, curves in tqdm(compared_pairs(len(pop.seeds), cfg),
                                    desc=f"pairs {pop.cell}", unit="pair",
                                    disable=not progress):
        row = {"cell": pop.cell, "epoch": epoch, "seed_a": int(pop.seeds[i]),
               "seed_b": int(pop.seeds[j])} | dict.fromkeys(PAIR_COLUMNS, float("nan"))
        if not (pop.diverged_at(i, epoch) or pop.diverged_at(j, epoch)):
            row |= pair_row(pop, split, i, j, epoch_index, cfg, inputs if cka else None, curves)
        rows.append(row)
    return pd.DataFrame(rows)


def cell_pairs(train_h5: str | Path, split: Split, cfg: MetricsSettings, progress: bool = True) -> pd.DataFrame:
    """The pairs table of one cell at ``cfg.landscape_epoch`` (-1 = the last kept epoch).

    Raises:
        ValueError: if the landscape epoch is not a kept epoch.
    """
    with open_population(train_h5) as pop:  # a pair's two checkpoints read when compared
        kept = [int(e) for e in pop.kept_epochs]
        epoch = landscape_epoch_of(kept, cfg.landscape_epoch)
        return pair_rows(pop, split, kept.index(epoch), cfg, progress)
