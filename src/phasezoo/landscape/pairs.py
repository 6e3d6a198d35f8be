"""The per-cell pair table: every compared seed pair at the landscape epoch (``pairs.parquet``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from phasezoo.checkpoints import Population, open_population
from phasezoo.data import Split
from phasezoo.phases import landscape_epoch_of
from phasezoo.settings import MetricsSettings
from phasezoo.landscape.connectivity import CurveSettings, interpolation_barrier, mode_connectivity
from phasezoo.landscape.similarity import cka_batches, pair_cka

PAIR_COLUMNS = ("cka", "linear_barrier", "linear_barrier_t", "mc", "mc_t", "mc_loss",
                "mc_chord", "mc_peak")


def curve_settings(cfg: MetricsSettings) -> CurveSettings:
    """The Bezier settings of a zoo's ``metrics`` config section (protocol keys filled)."""
    return CurveSettings(epochs=cfg.mc_epochs, lr=cfg.mc_lr, momentum=cfg.mc_momentum,
                         batch_size=cfg.mc_batch_size, points=cfg.mc_points,
                         seed=cfg.mc_seed, weight_decay=cfg.mc_weight_decay,
                         schedule=cfg.mc_schedule, init=cfg.mc_init)


def seed_pairs(n: int, max_pairs: int) -> list[tuple[int, int]]:
    """All index pairs of ``n`` seeds in order, or the first ``max_pairs`` (``-1`` = all)."""
    pairs = list(itertools.combinations(range(n), 2))
    return pairs if max_pairs < 0 else pairs[:max_pairs]


def pair_row(pop: Population, split: Split, i: int, j: int, k: int, cfg: MetricsSettings,
             cka_inputs: list[torch.Tensor]) -> dict:
    """CKA (on ``cka_inputs``, the cell's :func:`cka_batches`), linear barrier and Bezier mode
    connectivity of members i and j at kept index k."""
    bs = pop.hparams["eval_batch_size"]
    a, b = pop.model(i, k).to(split.x_train.device), pop.model(j, k).to(split.x_train.device)
    row = {"cka": pair_cka(a, b, split, cka_inputs, cfg, bs)}
    row |= interpolation_barrier(a, b, split, cfg.interpolation_points, bs)
    return row | mode_connectivity(a, b, split, curve_settings(cfg), bs)


def pair_rows(pop: Population, split: Split, epoch_index: int, cfg: MetricsSettings,
              progress: bool = True) -> pd.DataFrame:
    """One row per compared seed pair; a pair with a diverged member gets NaN metrics."""
    epoch = int(pop.kept_epochs[epoch_index])
    rows, cka_inputs = [], cka_batches(split, cfg)  # the same for every pair of the cell
    for i, j in tqdm(seed_pairs(len(pop.seeds), cfg.max_pairs), desc=f"pairs {pop.cell}",
                     unit="pair", disable=not progress):
        row = {"cell": pop.cell, "epoch": epoch, "seed_a": int(pop.seeds[i]),
               "seed_b": int(pop.seeds[j])} | dict.fromkeys(PAIR_COLUMNS, float("nan"))
        if not (pop.diverged_at(i, epoch) or pop.diverged_at(j, epoch)):
            row |= pair_row(pop, split, i, j, epoch_index, cfg, cka_inputs)
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
