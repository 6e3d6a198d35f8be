"""The learning curve: nested training sets, fixed validation and test cells, and its points
agreeing with the benchmark's own random-split scores."""

from __future__ import annotations

import numpy as np
import pytest

from phasezoo.splits import random_split
from phasezoo.wsl.baselines import BASELINES, TASKS
from phasezoo.wsl.benchmark import run_benchmark
from phasezoo.wsl.benchmark_report import markdown
from phasezoo.wsl.benchmark_report import figure
from phasezoo.wsl.learning_curve import (MIN_CELLS, curve_records, curve_sizes, nested_splits,
                                         summarize_curve)
from phasezoo_testkit import zoo_meta, small_mlp, zoo_table


def test_curve_sizes_are_distinct_rounded_fractions_with_a_floor() -> None:
    assert curve_sizes(24) == [3, 6, 12, 24]
    assert curve_sizes(7) == [2, 4, 7]  # 0.875 and 1.75 both floor to 2; 3.5 rounds to 4
    assert curve_sizes(MIN_CELLS - 1) == []


def test_nested_splits_grow_by_whole_cells_and_keep_validation_and_test() -> None:
    meta = zoo_meta(96, cells=48)
    split = random_split(meta, seed=3)
    subs = nested_splits(meta, split, seed=3)
    cells = meta["cell"].to_numpy()
    train_cells = [set(cells[s.train]) for s in subs]
    assert [len(c) for c in train_cells] == curve_sizes(len(set(cells[split.train])))
    for small, large in zip(train_cells, train_cells[1:]):
        assert small < large  # nested: each point only adds cells
    for s in subs:
        np.testing.assert_array_equal(s.val, split.val)
        np.testing.assert_array_equal(s.test, split.test)
        # whole cells: every row of a chosen cell is in, no row of another
        assert set(s.train) == set(np.flatnonzero(np.isin(cells, list(set(cells[s.train])))))
    np.testing.assert_array_equal(subs[-1].train, split.train)


def test_an_oracle_scores_one_and_the_mean_predictor_at_most_zero() -> None:
    """Two hand-made steps with known R²: the true targets (1 at every point) and the training
    mean (≤ 0 on any test set)."""
    from sklearn.metrics import r2_score

    meta = zoo_meta(96, cells=48)
    y = np.random.default_rng(0).normal(size=96)
    steps = {"oracle": lambda split, seed: y[split.test],
             "mean": lambda split, seed: np.full(len(split.test), y[split.train].mean())}

    def record(split, seed, pred):
        return {"r2": r2_score(y[split.test], pred), "bootstrap_std": 0.0, "seed": seed}

    splits = {0: random_split(meta, 0), 1: random_split(meta, 1)}
    runs = curve_records(meta, splits, steps, record)
    points = summarize_curve(runs)
    n_train = meta["cell"].iloc[splits[0].train].nunique()
    assert n_train == 48 - 10 - 8  # 20 % of 48 cells to test, 20 % of the rest to validate
    assert {p["train_cells"] for p in points} == set(curve_sizes(n_train))
    assert all(p["r2"] == 1.0 and p["seeds"] == 2 for p in points if p["baseline"] == "oracle")
    assert all(p["r2"] <= 0.0 for p in points if p["baseline"] == "mean")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_curves_full_point_is_the_benchmarks_random_split_score() -> None:
    """At all the training cells the curve refits exactly the benchmark's random split, so its
    R² equals the table's (an independent path to the same fit); a planted signal (test
    accuracy set by the first layer's scale) makes the learned baseline better with more
    cells."""
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.2, 2.0, 96)
    models = [small_mlp(i, s) for i, s in enumerate(scales)]
    meta = zoo_meta(96, cells=48, test_accuracy=1.0 / (1.0 + scales))
    base = {k: BASELINES[k] for k in ("hparams+gbm", "stats+gbm", "stats+mlp")}
    task = tuple(t for t in TASKS if t.name == "test_accuracy")
    result = run_benchmark(zoo_table(models, meta), seeds=1, baselines=base, tasks=task, curve=True)
    curve = result["learning_curve"]
    names = {p["baseline"] for p in curve["points"]}
    assert names == {"hparams+gbm", "stats+mlp"}  # the learned one and the bar, not stats+gbm
    full = max(p["train_cells"] for p in curve["points"])
    table = {e["baseline"]: e["r2"]["mean"] for e in result["summary"] if e["split"] == "random"}
    for p in curve["points"]:
        if p["train_cells"] == full:
            assert p["r2"] == pytest.approx(table[p["baseline"]], abs=1e-12)
    mlp = sorted((p["train_cells"], p["r2"]) for p in curve["points"]
                 if p["baseline"] == "stats+mlp")
    assert mlp[-1][1] > 0.8 and mlp[-1][1] > mlp[0][1]
    md = markdown(result)
    assert "## Learning curve" in md and f"| {full} cells |" in md
    assert len(figure(result).axes) == 2  # the task's panel and the curve's


def test_a_curve_with_no_point_says_why() -> None:
    meta = zoo_meta(24, cells=12)
    models = [small_mlp(i) for i in range(24)]
    result = run_benchmark(zoo_table(models, meta), seeds=1, baselines={"stats+gbm":
                           BASELINES["stats+gbm"]}, tasks=TASKS[:1], curve=True)
    assert result["learning_curve"]["points"] == []
    assert "No point was scored" in markdown(result)
