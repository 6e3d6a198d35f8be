"""The pictures read correctly without the code: margins, thresholds, titles, colour scales and
empty cells, checked on the matplotlib Figures the plotting functions build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import TwoSlopeNorm

from phasezoo.boundaries import label_zoo
from phasezoo.plots import (
    heatmap,
    heatmap_figure,
    margin_text,
    phase_diagram,
    phase_diagram_figure,
    sensitivity_text,
    thresholds_text,
)
from phasezoo.settings import PhaseThresholds

THRESHOLDS = PhaseThresholds(train_error=1.5, mc_tolerance=2.5, cka=0.9, cka_rule="anchor",
                             cka_rule_min_cells=8, sensitivity=0.1)


def _table() -> pd.DataFrame:
    """A 2 × 2 grid at epoch 30: one diverged cell, one a hair above the train-error
    threshold (margin 0.0002), one low-loss connected cell, one barrier whose CKA is NaN."""
    rows = []
    for (t, load), (err, mc, cka) in zip(
            [(16, 2), (32, 2), (16, 4), (32, 4)],
            [(np.nan, np.nan, np.nan), (1.5003, 5.0, 0.95), (0.2, 0.5, 0.999), (0.2, -9.0, np.nan)]):
        rows.append({"zoo": "demo", "cell": f"batch_size-{t}_width-{load}",
                     "temperature_name": "batch_size", "temperature_value": float(t),
                     "load_name": "width", "load_value": float(load), "landscape_epoch": 30,
                     "train_error": err, "mc": mc, "cka": cka, "test_accuracy": 1 - err / 100,
                     "diverged_fraction": 1.0 if np.isnan(err) else 0.0})
    return label_zoo(pd.DataFrame(rows), THRESHOLDS)


def _texts(fig) -> list[str]:
    """Every text a reader sees: figure notes, titles, cell texts, legends, axis labels, ticks."""
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return out


def test_margin_text_is_a_relative_distance_not_an_uncertainty():
    assert margin_text(0.0002, "train_error") == "margin 0.02 % (train err)"
    assert margin_text(0.1747, "mc_tolerance") == "margin 17 % (mc)"
    assert margin_text(12.33, "cka") == "margin 1200 % (CKA)"
    assert margin_text(1e-7, "mc_tolerance") == "margin <0.01 % (mc)"
    assert margin_text(float("nan"), "") == ""


def test_phase_diagram_states_thresholds_margins_and_sensitive_cells():
    table = _table()
    assert table["phase"].tolist() == ["diverged", "II", "IV-B", "III"]
    # 1.5003 % → II; at a train-error threshold 10 % higher it is low-loss connected: IV-B
    assert table["sensitive_to"].tolist() == ["", "train_error", "", ""]
    fig = phase_diagram_figure(table, THRESHOLDS)
    texts = "\n".join(_texts(fig))
    assert "±" not in texts and "margin 0.02 % (train err)" in texts
    for stated in ("train error > 1.5 %", "mc < −2.5 %", "CKA < 0.9"):
        assert stated in texts
    assert "epoch 30" in fig.axes[0].get_title()
    assert "if one threshold moves\n10 % up or down" in sensitivity_text(0.1) in texts
    assert "Conventions, not measured boundaries" in texts
    hatched = [p for p in fig.axes[0].patches if p.get_hatch()]
    assert len(hatched) == 1  # only the cell the ±10 % move relabels
    assert hatched[0].get_xy() == (0.5, -0.5)  # column 32, row width 2


def test_phase_diagram_hatches_what_the_table_calls_sensitive_not_its_margin():
    """The hatching follows ``sensitive`` (the relabel at ±δ), so a wider δ hatches more."""
    wide = label_zoo(_table().drop(columns=["phase", "margin", "margin_rule", "sensitive",
                                            "sensitive_to"]),
                     PhaseThresholds(**{**THRESHOLDS.as_dict(), "sensitivity": 0.9}))
    assert wide["sensitive"].sum() == 3  # all but the diverged cell
    fig = phase_diagram_figure(wide, PhaseThresholds(**{**THRESHOLDS.as_dict(),
                                                        "sensitivity": 0.9}))
    assert len([p for p in fig.axes[0].patches if p.get_hatch()]) == 3
    assert sensitivity_text(0.9) in _texts(fig)


def test_thresholds_text_names_the_cka_rule_that_split_the_cells():
    zoo = PhaseThresholds(**{**THRESHOLDS.as_dict(), "cka": 0.91234, "cka_rule": "zoo-median"})
    assert "CKA < 0.912 = IV-A, else IV-B (CKA split: this zoo's median)" in thresholds_text(zoo)
    assert "(CKA split: the protocol's fixed value)" in thresholds_text(THRESHOLDS)


def test_heatmap_titles_name_metric_unit_and_epoch():
    for column, title in [("mc", "Mode connectivity mc (train error %)\nepoch 30"),
                          ("cka", "CKA between seeds' outputs (0–1)\nepoch 30"),
                          ("test_accuracy", "Test accuracy (fraction)\nepoch 30")]:
        assert title in heatmap_figure(_table(), column, THRESHOLDS).axes[0].get_title()
    pinn = heatmap_figure(_table(), "test_accuracy", THRESHOLDS, task="pinn-convection")
    assert "relative L2 error" in pinn.axes[0].get_title()


def test_signed_mc_is_diverging_about_zero_with_its_tolerance_marked():
    fig = heatmap_figure(_table(), "mc", THRESHOLDS)
    image = fig.axes[0].images[0]
    assert isinstance(image.norm, TwoSlopeNorm) and image.norm.vcenter == 0
    assert image.norm.vmin == -image.norm.vmax == pytest.approx(-9.0)
    bar = fig.axes[1]
    ticks = list(bar.get_yticks())
    assert -2.5 in ticks and 2.5 in ticks
    assert "|mc| ≤ 2.5: connected; < −2.5: barrier" in bar.get_ylabel()


def test_cka_marks_its_threshold_and_unsigned_metrics_stay_sequential():
    fig = heatmap_figure(_table(), "cka", THRESHOLDS)
    assert not isinstance(fig.axes[0].images[0].norm, TwoSlopeNorm)
    assert any("0.9 IV-A | IV-B" == t.get_text() for t in fig.axes[1].get_yticklabels())


def test_empty_cells_are_hatched_and_explained():
    fig = heatmap_figure(_table(), "cka", THRESHOLDS)
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert "diverged" in cells and "no value" in cells
    assert len([p for p in fig.axes[0].patches if p.get_hatch()]) == 2
    note = " ".join(t.get_text() for t in fig.texts)
    assert "every seed of the cell diverged" in note and "constant (collapsed)" in note
    full = heatmap_figure(_table().assign(cka=0.95), "cka", THRESHOLDS)
    assert not full.texts  # nothing to explain


def test_pictures_are_written(tmp_path):
    assert phase_diagram(_table(), tmp_path / "p.png", THRESHOLDS).stat().st_size > 0
    assert heatmap(_table(), "mc", tmp_path / "mc.png", THRESHOLDS).stat().st_size > 0


def test_diagnosis_picture_speaks_in_human_labels():
    from phasezoo.wsl.diagnose import figure
    from phasezoo.wsl.diagnosis import METHODS, TASKS

    entries = [{"task": t, "case": c, "method": m, "accuracy": 70.0}
               for t in TASKS for c in ("random", "scale_transfer") for m in METHODS
               if m != "md_tree[cka]" or t == "bs_failure"]  # as diagnose scores them
    fig = figure({"subject": "demo", "entries": entries})
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() + fig.axes[0].get_yticklabels()]
    assert "MD tree" in ticks and any("temperature too small or too large?" in t for t in ticks)
    internal = {*TASKS, *METHODS, "scale_transfer"}
    assert not [t for t in ticks for name in internal if name in t.split()]
    assert not any("_" in t or "+dt" in t for t in ticks)
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells.count("skipped\n(see diagnosis.md)") == 4  # MD tree on CKA: 2 tasks × 2
