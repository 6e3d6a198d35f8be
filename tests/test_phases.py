"""Per-cell aggregation of the metrics and pairs tables."""

from __future__ import annotations

import pandas as pd
import pytest

from phasezoo.phases import DIVERGED, UNLABELLED, aggregate_cell, label


def test_phases_table_aggregates_seeds_at_the_last_kept_epoch(published):
    cfg, cell, _, zoo_dir = published
    results = zoo_dir.parents[1] / "results" / "tiny"
    phases = pd.read_parquet(results / "phases.parquet")
    metrics = pd.read_parquet(results / cell.id / "metrics.parquet")
    pairs = pd.read_parquet(results / cell.id / "pairs.parquet")
    assert phases["cell"].tolist() == [cell.id]
    row = phases.iloc[0]
    last = metrics[metrics["epoch"] == 3]
    assert row["landscape_epoch"] == 3 and len(last) == 2
    assert row["train_error"] == pytest.approx(100 * (1 - last["train_accuracy"].mean()))
    assert row["cka"] == pytest.approx(pairs["cka"].mean()) and 0 < row["cka"] <= 1
    assert row["phase"] == UNLABELLED and (results / "plots" / "test_accuracy.png").is_file()


def test_all_diverged_cell_is_labelled_diverged():
    metrics = pd.DataFrame({"epoch": [2, 2], "diverged": [True, True], "train_loss": [float("nan")] * 2,
                            "test_loss": [float("nan")] * 2, "train_accuracy": [float("nan")] * 2,
                            "test_accuracy": [float("nan")] * 2})
    pairs = pd.DataFrame({c: [float("nan")] for c in ("cka", "linear_barrier", "mc", "mc_loss")})
    assert label(aggregate_cell(metrics, pairs, 2)) == DIVERGED
    metrics.loc[0, "diverged"] = False
    assert label(aggregate_cell(metrics, pairs, 2)) == UNLABELLED
