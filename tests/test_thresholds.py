"""The protocols' phase thresholds, recomputed from the anchors' published metrics by the rule
stated in ``phasezoo.protocols``: a threshold, or a number its source quotes, that drifted from
its data fails here."""

from __future__ import annotations

import pandas as pd
import pytest
from phasezoo_anchor_grids import md_tree_cells, ptmz_cells

from phasezoo.phases import label_cells
from phasezoo.protocols import PHASE_THRESHOLDS, THRESHOLD_SOURCES


def _median_cka_of_low_loss_connected(table: pd.DataFrame, protocol: str) -> tuple[float, int]:
    """The rule: the median CKA of the cells the protocol's own train-error and mc thresholds
    call low-loss and connected (and how many there are)."""
    t = PHASE_THRESHOLDS[protocol]
    keep = (table["train_error"] <= t["train_error"]) & (table["mc"] >= -t["mc_tolerance"])
    return float(table.loc[keep, "cka"].median()), int(keep.sum())


def test_llt_thresholds_from_the_md_tree_configurations():
    """1,690 ResNet-18 / CIFAR-10 configurations measured with LLT's code (MD tree, MIT)."""
    md = md_tree_cells()
    t = PHASE_THRESHOLDS["llt"]
    # the train-error threshold sits in a gap: almost no configuration lies between 0.5 and 1 %
    assert ((md.train_error > 0.5) & (md.train_error <= t["train_error"])).mean() < 0.01
    # the mc tolerance sits in a sparse band: 3 % of configurations in (−5, −0.5]
    assert ((md.mc > -5) & (md.mc <= -0.5)).mean() == pytest.approx(52 / 1690)
    assert ((md.mc > -0.5) & (md.mc <= 0.5)).mean() > 0.3  # where the connected ones are
    median, count = _median_cka_of_low_loss_connected(md, "llt")
    assert (round(median, 3), count) == (0.555, 616)
    assert t["cka"] == round(median, 2)
    assert "616 such configurations" in THRESHOLD_SOURCES["llt"]["cka"]["data"]
    assert "median 0.555" in THRESHOLD_SOURCES["llt"]["cka"]["data"]


def test_the_llt_cka_split_depends_on_pooling_the_data_fractions():
    """Full data alone gives 0.67 by the same rule (the source says so)."""
    median, count = _median_cka_of_low_loss_connected(md_tree_cells(full_data_only=True), "llt")
    assert (round(median, 2), count) == (0.67, 35)
    assert "35 full-data ones give 0.67" in THRESHOLD_SOURCES["llt"]["cka"]["data"]


def _ptmz_grids() -> pd.DataFrame:
    """PTMZ's CIFAR-10 ResNet-18 and ResNet-50 cells together."""
    return pd.concat([ptmz_cells("cifar10_resnet18").assign(arch="resnet18"),
                      ptmz_cells("cifar10_resnet50").assign(arch="resnet50")], ignore_index=True)


def test_ptmz_thresholds_from_its_published_grids():
    cells = _ptmz_grids()
    t = PHASE_THRESHOLDS["ptmz"]
    assert len(cells) == 128
    assert ((cells.train_error > 0.5) & (cells.train_error <= t["train_error"])).sum() == 3
    assert ((cells.mc > -3) & (cells.mc <= -t["mc_tolerance"])).sum() == 2
    median, count = _median_cka_of_low_loss_connected(cells, "ptmz")
    assert (round(median, 3), count) == (0.926, 37)
    assert t["cka"] == round(median, 2)
    assert "37 such cells of the same grids: median 0.926" in THRESHOLD_SOURCES["ptmz"]["cka"]["data"]
    # on PTMZ's scale the llt threshold would call every low-loss connected cell IV-B
    keep = (cells.train_error <= t["train_error"]) & (cells.mc >= -t["mc_tolerance"])
    assert (cells.loc[keep, "cka"] >= PHASE_THRESHOLDS["llt"]["cka"]).all()


def test_the_ptmz_mc_tolerance_sits_on_the_edge_of_its_data():
    """ResNet-50 width 32 batch 512: mc −2.0007, phase III by 0.0007 (the source quotes it)."""
    cells = _ptmz_grids()
    edge = cells[(cells.arch == "resnet50") & (cells.width == 32) & (cells.batchsize == 512)]
    assert edge["mc"].iloc[0] == pytest.approx(-2.0007, abs=1e-4)
    labelled = label_cells(edge, **PHASE_THRESHOLDS["ptmz"])
    assert labelled["phase"].tolist() == ["III"] and labelled["margin_rule"].iloc[0] == "mc_tolerance"
    assert "mc −2.0007" in THRESHOLD_SOURCES["ptmz"]["mc_tolerance"]["data"]


@pytest.mark.parametrize("protocol", sorted(PHASE_THRESHOLDS))
def test_every_threshold_names_its_kind_rule_and_data(protocol):
    sources = THRESHOLD_SOURCES[protocol]
    assert sorted(sources) == sorted(PHASE_THRESHOLDS[protocol])
    for key, source in sources.items():
        assert sorted(source) == ["data", "kind", "rule"], key
        assert source["kind"].startswith("convention"), key  # no anchor measured a boundary
