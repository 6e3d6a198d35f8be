"""Where the phase labels' boundaries come from, and how much each label depends on them.

Every threshold of :mod:`phasezoo.phases` is a convention placed on an anchor's published
metrics (``THRESHOLD_SOURCES`` in :mod:`phasezoo.protocols`), not a boundary measured in the zoo
being labelled. This module makes that visible:

* the CKA split by a rule applied to the zoo's own metrics (``phases.cka_rule: zoo-median``: the
  median CKA of its low-loss connected cells, the anchors' own rule) beside the anchor's fixed
  value (:func:`cka_split`), so the card can show both and say which one labelled the zoo;
* label sensitivity (:func:`sensitivity`): the cells whose label changes when one threshold
  alone moves to t·(1−δ) or t·(1+δ), δ = ``phases.sensitivity``;
* a per-grid summary (:func:`grid_summary`, :func:`summary_table`): the phases present and the
  cells within δ, which ``docs/protocols.md`` tabulates for the anchors' published grids.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from phasezoo.config_checks import ConfigError
from phasezoo.phases import THRESHOLD_KEYS, label_cells
from phasezoo.vocabulary import PHASES
from phasezoo.settings import PhaseThresholds

CKA_RULES = ("anchor", "zoo-median")


@dataclass(frozen=True)
class CkaSplit:
    """The IV-A | IV-B split of one zoo under both rules, and which rule labels it.

    ``zoo_median`` is NaN when the zoo has fewer than ``min_cells`` low-loss connected cells
    with a CKA (``cells`` of them): a median of a handful of cells is not a boundary."""

    rule: str
    anchor: float
    zoo_median: float
    cells: int
    min_cells: int

    @property
    def value(self) -> float:
        """The split the labels use."""
        return self.anchor if self.rule == "anchor" else self.zoo_median


def low_loss_connected(cells: pd.DataFrame, train_error: float,
                       mc_tolerance: float) -> pd.Series:
    """Which cells the train-error and mc thresholds call low-loss (≤) and connected (mc ≥
    −tolerance), with a finite CKA: the set a CKA split divides (the anchors' rule takes its
    median on the same set, ``tests/test_thresholds.py``)."""
    cka = cells["cka"] if "cka" in cells else pd.Series(np.nan, index=cells.index)
    return ((cells["train_error"] <= train_error) & (cells["mc"] >= -mc_tolerance)
            & np.isfinite(cka.astype(float)))


def zoo_median_cka(cells: pd.DataFrame, train_error: float,
                   mc_tolerance: float) -> tuple[float, int]:
    """(median CKA, count) of the low-loss connected cells (NaN median when there are none)."""
    keep = low_loss_connected(cells, train_error, mc_tolerance)
    count = int(keep.sum())
    return (float(cells.loc[keep, "cka"].median()) if count else math.nan), count


def cka_split(cells: pd.DataFrame, phases: PhaseThresholds) -> CkaSplit:
    """The anchor's CKA split and this zoo's own median (``phases.cka_rule`` picks one).

    Raises:
        ConfigError: ``phases.cka_rule`` is unknown, or is ``zoo-median`` on a zoo with fewer
            than ``phases.cka_rule_min_cells`` low-loss connected cells.
    """
    if phases.cka_rule not in CKA_RULES:
        raise ConfigError(f"phases.cka_rule={phases.cka_rule!r} is unknown; known: "
                          f"{', '.join(CKA_RULES)}")
    median, count = zoo_median_cka(cells, phases.train_error, phases.mc_tolerance)
    enough = count >= phases.cka_rule_min_cells
    split = CkaSplit(phases.cka_rule, phases.cka, median if enough else math.nan, count,
                     phases.cka_rule_min_cells)
    if phases.cka_rule == "zoo-median" and not enough:
        raise ConfigError(
            f"phases.cka_rule=zoo-median: the zoo has {count} low-loss connected cells with a CKA "
            f"(train error ≤ {phases.train_error:g} %, mc ≥ −{phases.mc_tolerance:g}), fewer "
            f"than phases.cka_rule_min_cells={phases.cka_rule_min_cells}; their median is no "
            "boundary. Use phases.cka_rule: anchor, or a grid with more such cells.")
    return split


def resolved_thresholds(cells: pd.DataFrame, phases: PhaseThresholds) -> PhaseThresholds:
    """``phases`` with ``cka`` replaced by the split its rule gives on ``cells``: the thresholds
    that labelled them (what the phase diagram and heat maps state)."""
    return dataclasses.replace(phases, cka=cka_split(cells, phases).value)


def threshold_values(phases: PhaseThresholds) -> dict[str, float]:
    """The labelling thresholds of a ``phases`` section, as :func:`label_cells` takes them."""
    return {key: getattr(phases, key) for key in THRESHOLD_KEYS}


def sensitivity(cells: pd.DataFrame, thresholds: Mapping[str, float],
                delta: float) -> pd.DataFrame:
    """Per cell, which thresholds relabel it when moved alone to t·(1−δ) or t·(1+δ).

    Returns:
        A frame on ``cells``' index with ``sensitive`` (bool) and ``sensitive_to`` (the
        threshold keys, comma-separated in THRESHOLD_KEYS order; "" when none).
    """
    # A cell without a CKA is I, II or III (a low-loss connected one cannot be labelled); when a
    # moved threshold makes it low-loss connected it becomes IV-A or IV-B whatever its CKA, a
    # change either way, so any stand-in value detects it.
    probe = cells.assign(cka=cells["cka"].fillna(0.0) if "cka" in cells else 0.0)
    base = label_cells(probe, **thresholds)["phase"].to_numpy()
    moved_by = []
    for key in THRESHOLD_KEYS:
        changed = np.zeros(len(cells), dtype=bool)
        for factor in (1.0 - delta, 1.0 + delta):
            moved = {**thresholds, key: thresholds[key] * factor}
            changed |= label_cells(probe, **moved)["phase"].to_numpy() != base
        moved_by.append(changed)
    names = [",".join(k for k, hit in zip(THRESHOLD_KEYS, hits) if hit) for hits in zip(*moved_by)]
    return pd.DataFrame({"sensitive": [bool(n) for n in names], "sensitive_to": names},
                        index=cells.index)


def sensitive_counts(labelled: pd.DataFrame) -> dict[str, int]:
    """How many cells of a labelled table each threshold's ±δ move relabels (a cell counts once
    per threshold it names in ``sensitive_to``)."""
    return {k: sum(k in to.split(",") for to in labelled["sensitive_to"]) for k in THRESHOLD_KEYS}


def label_zoo(cells: pd.DataFrame, phases: PhaseThresholds) -> pd.DataFrame:
    """Label a zoo's per-cell table by its ``phases`` settings: the CKA split of its
    ``cka_rule``, then ``phase``/``margin``/``margin_rule`` (:func:`label_cells`) and
    ``sensitive``/``sensitive_to`` at δ = ``phases.sensitivity``."""
    thresholds = threshold_values(resolved_thresholds(cells, phases))
    labelled = label_cells(cells, **thresholds)
    return labelled.join(sensitivity(cells, thresholds, phases.sensitivity))


def grid_summary(cells: pd.DataFrame, thresholds: Mapping[str, float],
                 delta: float) -> dict[str, object]:
    """What the labeller makes of one grid: cell count, cells per phase present, cells whose
    label changes within ±δ (in all and per threshold) and the grid's own median CKA split."""
    labelled = label_cells(cells, **thresholds).join(sensitivity(cells, thresholds, delta))
    counts = labelled["phase"].value_counts()
    median, count = zoo_median_cka(cells, thresholds["train_error"], thresholds["mc_tolerance"])
    return {"cells": len(cells),
            "phases": {p: int(counts[p]) for p in PHASES if p in counts},
            "sensitive": int(labelled["sensitive"].sum()),
            "by": sensitive_counts(labelled),
            "zoo_median_cka": median, "low_loss_connected": count}


def summary_table(grids: Mapping[str, tuple[pd.DataFrame, Mapping[str, float]]],
                  delta: float) -> str:
    """A markdown table of :func:`grid_summary` for each named grid (cells, thresholds)."""
    lines = [(f"| grid | thresholds (train error %, mc tol., CKA) | cells | "
              f"{' | '.join(PHASES)} | within ±{100 * delta:g} % | by train_error / "
              "mc_tolerance / cka | own median CKA (cells) |"),
             "|---|---|---|" + "---|" * len(PHASES) + "---|---|---|"]
    for name, (cells, t) in grids.items():
        s = grid_summary(cells, t, delta)
        by = " / ".join(str(s["by"][k]) for k in THRESHOLD_KEYS)
        lines.append(f"| {name} | {t['train_error']:g}, {t['mc_tolerance']:g}, {t['cka']:g} | "
                     f"{s['cells']} | "
                     + " | ".join(str(s["phases"].get(p, 0)) for p in PHASES)
                     + f" | {s['sensitive']} | {by} | "
                     f"{s['zoo_median_cka']:.3f} ({s['low_loss_connected']}) |")
    return "\n".join(lines)
