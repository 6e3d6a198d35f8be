"""Phase boundaries as conventions: the zoo-median CKA rule, label sensitivity against a
brute-force relabel written from the taxonomy alone, and the per-grid table of the docs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from phasezoo_anchor_grids import (
    DELTA,
    doc_table,
    md_tree_cells,
    ptmz_cells,
    published_grids,
    published_table,
)
from phasezoo_testkit import TINY

from phasezoo.boundaries import cka_split, grid_summary, label_zoo, sensitivity
from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError
from phasezoo.protocols import PHASE_THRESHOLDS
from phasezoo.settings import PhaseThresholds

KEYS = ("train_error", "mc_tolerance", "cka")


def _taxonomy(err: float, mc: float, cka: float, t: dict[str, float]) -> str:
    """Yang et al.'s phases written out from the rules alone (the reference)."""
    if not (np.isfinite(err) and np.isfinite(mc)):
        return "unlabelled"
    barrier = mc < -t["mc_tolerance"]
    if err > t["train_error"]:
        return "I" if barrier else "II"
    if barrier:
        return "III"
    return "IV-A" if cka < t["cka"] else "IV-B"  # NaN CKA compares False: IV-B, still "IV"


def _brute_force(cells: pd.DataFrame, t: dict[str, float], delta: float) -> list[str]:
    """Per cell, the thresholds whose move to t·(1−δ) or t·(1+δ) alone changes its label."""
    out = []
    for err, mc, cka in zip(cells["train_error"], cells["mc"], cells["cka"]):
        base = _taxonomy(err, mc, cka, t)
        moved = [k for k in KEYS
                 if any(_taxonomy(err, mc, cka, {**t, k: t[k] * f}) != base
                        for f in (1 - delta, 1 + delta))]
        out.append(",".join(moved))
    return out


def _settings(**changes: object) -> PhaseThresholds:
    base = {**PHASE_THRESHOLDS["ptmz"], "cka_rule": "anchor", "cka_rule_min_cells": 8,
            "sensitivity": 0.1}
    return PhaseThresholds(**{**base, **changes})


@pytest.mark.parametrize("name", list(published_grids()))
def test_sensitivity_equals_a_brute_force_relabel_on_every_published_grid(name):
    cells, t = published_grids()[name]
    got = sensitivity(cells, t, DELTA)
    assert got["sensitive_to"].tolist() == _brute_force(cells, t, DELTA)
    assert (got["sensitive"] == (got["sensitive_to"] != "")).all()
    assert got["sensitive"].any()  # every grid has cells within ±10 % of a threshold


def test_sensitivity_at_hand_placed_distances():
    """Cells at known relative distances from each threshold (ptmz: 1 %, 2, 0.93)."""
    cells = pd.DataFrame({
        "train_error": [1.05, 1.2, 0.5, 0.5, 0.5, 0.5, 1.05],
        "mc": [0.0, 0.0, -2.15, -2.3, 0.0, 0.0, 0.0],
        "cka": [0.5, 0.5, 0.99, 0.99, 0.88, 0.80, np.nan]})
    got = sensitivity(cells, PHASE_THRESHOLDS["ptmz"], 0.1)["sensitive_to"].tolist()
    # 5 % above the train-error threshold: II ↔ IV-A; 20 % above: no; mc −2.15 vs −2 (7.5 %):
    # III ↔ IV-B; −2.3 (15 %): no; CKA 0.88 vs 0.93 (5.4 %): IV-A ↔ IV-B; 0.80 (14 %): no;
    # no CKA, 5 % above: still relabelled (IV-something at 1.1 %)
    assert got == ["train_error", "", "mc_tolerance", "", "cka", "", "train_error"]
    wider = sensitivity(cells, PHASE_THRESHOLDS["ptmz"], 0.2)["sensitive_to"].tolist()
    assert wider == ["train_error", "train_error", "mc_tolerance", "mc_tolerance", "cka",
                     "cka", "train_error"]


def test_zoo_median_rule_splits_the_zoos_own_low_loss_connected_cells():
    cells = ptmz_cells("cifar10_resnet18")
    keep = (cells.train_error <= 1.0) & (cells.mc >= -2.0)
    expected = float(np.median(cells.loc[keep, "cka"]))  # the rule, by hand
    split = cka_split(cells, _settings(cka_rule="zoo-median"))
    assert (split.cells, split.zoo_median, split.value) == (int(keep.sum()), expected, expected)
    labelled = label_zoo(cells, _settings(cka_rule="zoo-median"))
    counts = labelled.loc[keep, "phase"].value_counts()
    assert counts["IV-A"] == counts["IV-B"] == keep.sum() // 2  # 26 cells: half by construction
    anchor = cka_split(cells, _settings())
    assert (anchor.rule, anchor.value, anchor.zoo_median) == ("anchor", 0.93, expected)


def test_zoo_median_refuses_too_few_cells_naming_the_key():
    cells = ptmz_cells("cifar10_resnet50")  # 11 low-loss connected cells
    with pytest.raises(ConfigError, match=r"^phases.cka_rule=zoo-median: the zoo has 11 .*"
                                          r"phases.cka_rule_min_cells=12"):
        label_zoo(cells, _settings(cka_rule="zoo-median", cka_rule_min_cells=12))
    split = cka_split(cells, _settings(cka_rule_min_cells=12))  # the anchor rule labels anyway
    assert split.value == 0.93 and math.isnan(split.zoo_median) and split.cells == 11


def test_the_phases_keys_flow_from_the_config_and_are_validated():
    raw = copy.deepcopy(TINY)
    raw["zoos"]["tiny"]["phases"] = {"cka_rule": "zoo-median", "sensitivity": 0.2}
    phases = load_config(raw).zoos["tiny"].phases
    assert (phases.cka_rule, phases.sensitivity, phases.cka_rule_min_cells) == \
        ("zoo-median", 0.2, 8)
    assert phases.cka == PHASE_THRESHOLDS["ptmz"]["cka"]  # the anchor value stays the default
    assert load_config(copy.deepcopy(TINY)).zoos["tiny"].phases.cka_rule == "anchor"
    raw["zoos"]["tiny"]["phases"] = {"cka_rule": "bimodal"}
    with pytest.raises(ConfigError, match="phases.cka_rule"):
        load_config(raw)


def test_md_tree_full_data_gives_another_cka_split_than_the_pooled_fractions():
    """The llt anchor (0.55) pools ten data fractions; full data alone gives 0.67."""
    pooled = grid_summary(md_tree_cells(), PHASE_THRESHOLDS["llt"], DELTA)
    full = grid_summary(md_tree_cells(full_data_only=True), PHASE_THRESHOLDS["llt"], DELTA)
    assert (pooled["low_loss_connected"], round(pooled["zoo_median_cka"], 3)) == (616, 0.555)
    assert (full["low_loss_connected"], round(full["zoo_median_cka"], 2)) == (35, 0.67)


def test_the_docs_table_is_the_labellers_output_on_the_published_grids():
    """docs/protocols.md holds what tests/phasezoo_anchor_grids.py computes (regenerate: run it)."""
    assert doc_table() == published_table()


def _ptmz_zoo_table(settings: PhaseThresholds) -> pd.DataFrame:
    """PTMZ's ResNet-18 grid as a zoo's phases table (cell ids, grid columns), labelled."""
    cells = ptmz_cells("cifar10_resnet18")
    cells = cells.assign(zoo="ptmz-r18", cell=[f"batch_size-{b}_width-{w}" for b, w in
                                               zip(cells.batchsize, cells.width)],
                         temperature_name="batch_size", temperature_value=cells.batchsize,
                         load_name="width", load_value=cells.width, landscape_epoch=150)
    return label_zoo(cells, settings)


def test_the_card_names_each_thresholds_kind_the_rule_used_and_the_sensitive_cells():
    from phasezoo.card import boundaries_section

    table = _ptmz_zoo_table(_settings())
    text = "\n".join(boundaries_section("ptmz", _settings(), table))
    for key in KEYS:
        assert f"| `{key}` |" in text
    assert "No threshold below is a measured phase boundary" in text
    median = f"{cka_split(table, _settings()).zoo_median:.3f}"
    assert ("labelled by `phases.cka_rule: anchor`, CKA split 0.93. Anchor value: 0.93; this "
            f"zoo's own value (`zoo-median`): {median}, the median of its 26") in text
    assert ("Label sensitivity: 25 of 64 labelled cells change label when one threshold alone "
            "moves by ±10 % (`phases.sensitivity`): by train_error 0, mc_tolerance 0, cka 25"
            in text)
    assert text.count("(IV-A: cka)") + text.count("(IV-B: cka)") == 25
    own = "\n".join(boundaries_section("ptmz", _settings(cka_rule="zoo-median"),
                                       _ptmz_zoo_table(_settings(cka_rule="zoo-median"))))
    assert f"`phases.cka_rule: zoo-median`, CKA split {float(median):.3g}" in own
    changed = "\n".join(boundaries_section("ptmz", _settings(train_error=0.5), table))
    assert "| `train_error` | 0.5 | set by this zoo's config (`ptmz`: 1) |" in changed
    rehearsal = table[["cell", "phase"]].assign(phase="rehearsal")  # no metrics: values only
    assert "Label sensitivity" not in "\n".join(boundaries_section("ptmz", _settings(), rehearsal))
