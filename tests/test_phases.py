"""Per-cell aggregation of the metrics and pairs tables."""

from __future__ import annotations

import pandas as pd
import pytest

from phasezoo.phases import aggregate_cell


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
    assert row["phase"] in ("I", "II", "III", "IV-A", "IV-B")
    assert row["sensitive"] == bool(row["sensitive_to"])  # the zoo's label sensitivity, δ 10 %
    assert (results / "plots" / "phase_diagram.png").is_file()


def test_all_diverged_cell_aggregates():
    metrics = pd.DataFrame({"epoch": [2, 2], "diverged": [True, True], "train_loss": [float("nan")] * 2,
                            "test_loss": [float("nan")] * 2, "train_accuracy": [float("nan")] * 2,
                            "test_accuracy": [float("nan")] * 2})
    pairs = pd.DataFrame({c: [float("nan")] for c in ("cka", "linear_barrier", "mc", "mc_loss")})
    assert aggregate_cell(metrics, pairs, 2)["diverged_fraction"] == 1.0
    metrics.loc[0, "diverged"] = False
    assert aggregate_cell(metrics, pairs, 2)["diverged_fraction"] == 0.5


def _cells(**cols):
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"cell": [f"c{i}" for i in range(n)], **cols})


def test_every_rule_of_the_taxonomy():
    from phasezoo.phases import label_cells

    cells = _cells(train_error=[50.0, 50.0, 0.1, 0.1, 0.1],
                   mc=[-30.0, 20.0, -30.0, 0.0, 0.5],
                   cka=[0.2, 0.2, 0.9, 0.3, 0.95])
    assert label_cells(cells)["phase"].tolist() == ["I", "II", "III", "IV-A", "IV-B"]


@pytest.mark.parametrize("column, below, above", [
    ("train_error", "IV-B", "II"),   # train error 1.0 % is still low loss; just above is high
    ("mc", "III", "IV-B"),          # mc −2.0 is still connected; just below is a barrier
    ("cka", "IV-A", "IV-B"),         # CKA 0.8 is IV-B; just below is IV-A
])
def test_threshold_edges(column, below, above):
    from phasezoo.phases import DEFAULT_THRESHOLDS, label_cells

    t = DEFAULT_THRESHOLDS
    edge = {"train_error": t["train_error"], "mc": -t["mc_tolerance"], "cka": t["cka"]}[column]
    base = {"train_error": 0.1, "mc": 0.0, "cka": 0.95}
    rows = []
    for value in (edge - 1e-9, edge, edge + 1e-9):
        rows.append({**base, column: value})
    phases = label_cells(pd.DataFrame(rows))["phase"].tolist()
    expected = {"train_error": [below, below, above], "mc": [below, above, above],
                "cka": [below, above, above]}[column]
    assert phases == expected


def test_margin_names_the_nearest_threshold():
    from phasezoo.phases import label_cells

    out = label_cells(_cells(train_error=[0.9], mc=[0.0], cka=[0.99]), cka=0.8)
    assert out["phase"].iloc[0] == "IV-B" and out["margin_rule"].iloc[0] == "train_error"
    assert out["margin"].iloc[0] == pytest.approx(0.1)
    out = label_cells(_cells(train_error=[0.1], mc=[0.0], cka=[0.79]), cka=0.8)
    assert out["margin_rule"].iloc[0] == "cka" and out["margin"].iloc[0] == pytest.approx(0.0125)


def test_custom_thresholds_and_optional_columns():
    from phasezoo.phases import label_cells

    cells = _cells(train_error=[3.0, 40.0], mc=[0.0, -15.0])  # no cka column, no Hessian
    assert label_cells(cells.iloc[[1]])["phase"].tolist() == ["I"]  # high loss: CKA not needed
    with pytest.raises(ValueError, match="column 'cka' is required"):
        label_cells(cells, train_error=5.0)  # now cell 0 is low-loss and connected
    out = label_cells(cells, train_error=2.0, mc_tolerance=20.0)
    assert out["phase"].tolist() == ["II", "II"]
    with pytest.raises(ValueError, match="column 'mc' is required"):
        label_cells(cells.drop(columns="mc"))
    with pytest.raises(ValueError, match="unknown phase thresholds"):
        label_cells(cells, loss=1.0)


def test_diverged_cells():
    from phasezoo.phases import label_cells

    out = label_cells(_cells(train_error=[float("nan")], mc=[float("nan")], diverged_fraction=[1.0]))
    assert out["phase"].tolist() == ["diverged"]
