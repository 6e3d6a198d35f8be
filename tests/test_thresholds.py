"""The protocols' phase thresholds, recomputed from the anchors' published metrics by the rule
stated in ``phasezoo.protocols``: a threshold that drifted from its data fails here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from phasezoo.protocols import PHASE_THRESHOLDS

DATA = Path(__file__).parent / "data"


def _median_cka_of_low_loss_connected(table: pd.DataFrame, train_error: str, mc: str,
                                      cka: str, protocol: str) -> float:
    """The rule: the median CKA of the cells the protocol's own train-error and mc thresholds
    call low-loss and connected."""
    t = PHASE_THRESHOLDS[protocol]
    keep = (table[train_error] <= t["train_error"]) & (table[mc] >= -t["mc_tolerance"])
    return float(table.loc[keep, cka].median())


def test_llt_thresholds_from_the_md_tree_configurations():
    """1,690 ResNet-18 / CIFAR-10 configurations measured with LLT's code (MD tree, MIT)."""
    md = pd.read_csv(DATA / "md-tree" / "dataframe_normal_public.csv")
    t = PHASE_THRESHOLDS["llt"]
    # the train-error threshold sits in a gap: almost no configuration lies between 0.5 and 1 %
    assert ((md.train_error > 0.5) & (md.train_error <= t["train_error"])).mean() < 0.01
    # the mc tolerance sits in a sparse band: 3 % of configurations in (−5, −0.5]
    mc = md.mode_connectivity
    assert ((mc > -5) & (mc <= -0.5)).mean() == pytest.approx(52 / 1690)
    assert ((mc > -0.5) & (mc <= 0.5)).mean() > 0.3  # where the connected ones are
    median = _median_cka_of_low_loss_connected(md, "train_error", "mode_connectivity", "CKA",
                                               "llt")
    assert median == pytest.approx(0.555, abs=1e-3)
    assert t["cka"] == round(median, 2)


def _ptmz_cells() -> pd.DataFrame:
    """PTMZ's CIFAR-10 ResNet-18 and ResNet-50 cells: seed-mean train error, and the landscape
    metrics PTMZ stores per cell (repeated over its seeds)."""
    frames = []
    for name in ("cifar10_resnet18", "cifar10_resnet50"):
        rows = pd.read_csv(DATA / "ptmz" / f"{name}_summary.csv")
        rows = rows.assign(train_error=100 * (1 - rows.train_acc))
        frames.append(rows.groupby(["width", "batchsize"]).agg(
            train_error=("train_error", "mean"), mc=("curve_mc_train_error", "first"),
            cka=("representation_similarity", "first")).reset_index())
    return pd.concat(frames, ignore_index=True)


def test_ptmz_thresholds_from_its_published_grids():
    cells = _ptmz_cells()
    t = PHASE_THRESHOLDS["ptmz"]
    assert len(cells) == 128
    assert ((cells.train_error > 0.5) & (cells.train_error <= t["train_error"])).sum() == 3
    assert ((cells.mc > -3) & (cells.mc <= -t["mc_tolerance"])).sum() == 2
    median = _median_cka_of_low_loss_connected(cells, "train_error", "mc", "cka", "ptmz")
    assert median == pytest.approx(0.926, abs=1e-3)
    assert t["cka"] == round(median, 2)
    # on PTMZ's scale the llt threshold would call every low-loss connected cell IV-B
    keep = (cells.train_error <= t["train_error"]) & (cells.mc >= -t["mc_tolerance"])
    assert (cells.loc[keep, "cka"] >= PHASE_THRESHOLDS["llt"]["cka"]).all()
