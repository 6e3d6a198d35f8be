"""WSL benchmark: permutation-invariant features, a planted signal recovered, splits grouped by cell."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from phasezoo.weights import describe, flatten_state
from phasezoo.wsl.baselines import BASELINES, TASKS
from phasezoo.wsl.benchmark import run_benchmark
from phasezoo.wsl.benchmark_report import markdown
from phasezoo.wsl.features import EXTRACTORS, layer_quintiles, layer_statistics
from phasezoo.splits import leave_phase_out, random_split, scale_transfer
from phasezoo.wsl.table import ZooTable
from phasezoo_testkit import ARCH, edited_zoo_copy, permute_hidden, small_mlp, zoo_meta, zoo_table











@pytest.mark.parametrize("name", ["layer_quintiles", "layer_statistics"])
def test_weight_features_are_invariant_to_hidden_unit_permutations(name):
    models = [small_mlp(s) for s in range(3)]
    permuted = [permute_hidden(m, 10 + i) for i, m in enumerate(models)]
    x = torch.randn(5, 1, 3, 3)
    assert torch.allclose(models[0](x), permuted[0](x), atol=1e-6)  # same function
    assert not np.array_equal(flatten_state(models[0]).numpy(), flatten_state(permuted[0]).numpy())
    a = EXTRACTORS[name](zoo_table(models, zoo_meta(3, cells=3)), "")
    b = EXTRACTORS[name](zoo_table(permuted, zoo_meta(3, cells=3)), "")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    raw = EXTRACTORS["raw_weights"]
    assert not np.allclose(raw(zoo_table(models, zoo_meta(3, cells=3)), ""),
                           raw(zoo_table(permuted, zoo_meta(3, cells=3)), ""))  # the raw baseline is not


def test_htsr_features_are_permutation_invariant():
    """HT-SR α depends on singular values only, which a permutation of units does not change."""
    from phasezoo import htsr

    model = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 20))
    torch.manual_seed(0)
    perm = torch.randperm(30)
    other = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 20))
    with torch.no_grad():
        other[0].weight.copy_(model[0].weight[perm])
        other[0].bias.copy_(model[0].bias[perm])
        other[2].weight.copy_(model[2].weight[:, perm])
        other[2].bias.copy_(model[2].bias)
    a, b = htsr.analyze(model, farms=False), htsr.analyze(other, farms=False)
    np.testing.assert_allclose(a["alpha"], b["alpha"], rtol=1e-9)


def test_layer_statistics_by_hand():
    model = small_mlp(0)
    stats = layer_statistics(zoo_table([model], zoo_meta(1, cells=1)), "")[0]
    w = model[1].weight.detach().double().numpy().ravel()
    expected = [*np.percentile(w, [0, 25, 50, 75, 100]), w.mean(), w.var()]
    np.testing.assert_allclose(stats[:7], expected, rtol=1e-12)
    q = layer_quintiles(zoo_table([model], zoo_meta(1, cells=1)), "")[0]
    np.testing.assert_allclose(q[:5], np.percentile(w, [1, 25, 50, 75, 99]), rtol=1e-12)
    assert len(stats) == 7 * 6  # 6 trainable tensors (3 weights, 3 biases) × 7 statistics


def test_splits_never_split_a_cell():
    meta = zoo_meta(48)
    for seed in range(3):
        splits = [random_split(meta, seed), scale_transfer(meta, seed), *leave_phase_out(meta, seed)]
        for s in splits:
            parts = [set(meta["cell"].iloc[idx]) for idx in (s.train, s.val, s.test)]
            assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]), s.name
            assert len(s.train) and len(s.val) and len(s.test), s.name
    lopo = leave_phase_out(meta, 0)
    assert [s.name for s in lopo] == ["leave_phase_out:I", "leave_phase_out:II",
                                      "leave_phase_out:IV-B"]
    assert set(meta["phase"].iloc[lopo[0].test]) == {"I"}
    assert "I" not in set(meta["phase"].iloc[lopo[0].train])
    st = scale_transfer(meta, 0)
    assert meta["load_value"].iloc[st.train].max() < meta["load_value"].iloc[st.test].min()


def test_planted_signal_is_recovered_and_shuffled_labels_are_not():
    """Test accuracy is a function of the first layer's weight scale; per-layer statistics +
    gradient boosting must find it (R² > 0.9), and score ≈ 0 when the labels are shuffled."""
    rng = np.random.default_rng(0)
    n = 96
    scales = rng.uniform(0.2, 2.0, n)
    models = [small_mlp(i, s) for i, s in enumerate(scales)]
    meta = zoo_meta(n, cells=48, test_accuracy=1.0 / (1.0 + scales))
    task = tuple(t for t in TASKS if t.name == "test_accuracy")
    stats = {"stats+gbm": BASELINES["stats+gbm"], "hparams+gbm": BASELINES["hparams+gbm"]}
    result = run_benchmark(zoo_table(models, meta), seeds=2, baselines=stats, tasks=task)
    by = {(e["split"], e["baseline"]): e for e in result["summary"]}
    assert by[("random", "stats+gbm")]["r2"]["mean"] > 0.9
    assert by[("random", "hparams+gbm")]["r2"]["mean"] < 0.2  # the grid says nothing of it
    shuffled = meta.assign(test_accuracy=rng.permutation(meta["test_accuracy"].to_numpy()))
    noise = run_benchmark(zoo_table(models, shuffled), seeds=2, baselines=stats, tasks=task)
    noise_by = {(e["split"], e["baseline"]): e for e in noise["summary"]}
    assert noise_by[("random", "stats+gbm")]["r2"]["mean"] < 0.3
    assert "| test_accuracy | random |" in markdown(result)


def test_htsr_baseline_reads_the_layer_lists_and_names_a_missing_column():
    models = [small_mlp(i) for i in range(24)]
    alpha = [np.array([2.0 + i % 5, np.nan, 3.0]) for i in range(24)]
    meta = zoo_meta(24, cells=12, test_accuracy=[0.5 + 0.1 * (i % 5) for i in range(24)])
    x = EXTRACTORS["htsr"](zoo_table(models, meta, alpha), "")
    assert x.shape == (24, 3) and np.isnan(x[:, 1]).all()
    with pytest.raises(ValueError, match="no layer_\\* columns"):
        EXTRACTORS["htsr"](zoo_table(models, meta), "")
    result = run_benchmark(zoo_table(models, meta), seeds=1, tasks=TASKS[:1])
    assert "htsr+gbm" in result["skipped_baselines"]


def test_htsr_features_leave_out_the_farms_window_size():
    """``layer_farms_window_evals`` follows the layer's shape, not training: not a feature."""
    models = [small_mlp(i) for i in range(4)]
    table = zoo_table(models, zoo_meta(4, cells=2), [np.array([2.0 + i, 3.0]) for i in range(4)])
    table.layer_columns["layer_farms_window_evals"] = [np.array([64.0, 10.0])] * 4
    x = EXTRACTORS["htsr"](table, "")
    np.testing.assert_array_equal(x, np.stack(table.layer_columns["layer_alpha"]))


def test_zoo_transfer_trains_on_one_zoo_and_tests_on_the_other():
    from phasezoo.splits import zoo_transfer
    from phasezoo.wsl.table import concat

    rng = np.random.default_rng(1)
    scales = rng.uniform(0.2, 2.0, 96)
    models = [small_mlp(i, s) for i, s in enumerate(scales)]
    meta = zoo_meta(96, cells=48, test_accuracy=1.0 / (1.0 + scales))
    a = zoo_table(models[:48], meta.iloc[:48].reset_index(drop=True))
    b_meta = meta.iloc[48:].reset_index(drop=True).assign(zoo="other")
    both = concat([a, zoo_table(models[48:], b_meta)])
    split = zoo_transfer(both.meta, "z", 0)
    assert set(both.meta["zoo"].iloc[split.test]) == {"other"}
    assert set(both.meta["zoo"].iloc[np.concatenate([split.train, split.val])]) == {"z"}
    task = tuple(t for t in TASKS if t.name == "test_accuracy")
    result = run_benchmark(both, seeds=1, baselines={"stats+gbm": BASELINES["stats+gbm"]},
                           tasks=task, train_zoo="z")
    (entry,) = result["summary"]
    assert entry["split"] == "zoo_transfer:z" and entry["r2"]["mean"] > 0.8


def test_a_zoo_too_small_to_split_reports_so(tmp_path):
    models = [small_mlp(i) for i in range(2)]
    result = run_benchmark(zoo_table(models, zoo_meta(2, cells=1)), seeds=1)
    assert result["summary"] == []
    assert "No split had enough cells" in markdown(result)
    from phasezoo.wsl.benchmark_report import write_report

    js, md = write_report(result, tmp_path)
    assert js.exists() and (tmp_path / "benchmark.png").stat().st_size > 0


def test_streaming_gives_the_same_features_and_drops_raw_weights_over_budget(published):
    from phasezoo.wsl.table import load_zoo

    zoo = str(published[3])
    whole = load_zoo(zoo)
    streamed = load_zoo(zoo, stream=True)
    assert len(streamed) == len(whole) > 0
    assert all(np.array_equal(a, b) for a, b in zip(streamed.weights, whole.weights, strict=True))
    for fn in (layer_statistics, layer_quintiles):
        np.testing.assert_array_equal(fn(streamed), fn(whole))
    lean = load_zoo(zoo, stream=True, raw_max_mb=0)
    assert lean.weights is None and "exceed the streaming budget of 0 MB" in lean.note
    np.testing.assert_array_equal(layer_statistics(lean), layer_statistics(whole))
    result = run_benchmark(lean, seeds=1)
    assert "streaming budget" in result["skipped_baselines"]["raw+linear"]


def _mixed_depth_models() -> tuple[list[nn.Module], list[dict]]:
    """Two MLPs of depth 2 and one of depth 1: 6 and 4 trainable tensors."""
    from phasezoo.models import create_model

    shallow = {**ARCH, "kwargs": {**ARCH["kwargs"], "depth": 1}}
    torch.manual_seed(0)
    models = [small_mlp(0), small_mlp(1), create_model("mlp", **shallow["kwargs"])]
    return models, [describe(m, ARCH) for m in models[:2]] + [describe(models[2], shallow)]


def test_a_zoo_mixing_layer_counts_is_named_as_such():
    models, layouts = _mixed_depth_models()
    table = ZooTable(zoo_meta(3, cells=3), [flatten_state(m).numpy() for m in models], layouts, {})
    with pytest.raises(ValueError, match=r"mixes architectures \(trainable tensors per model: "
                                         r"\[4, 6\]\)"):
        layer_statistics(table)


def test_a_streamed_zoo_mixing_layer_counts_is_not_blamed_on_the_budget():
    import datasets

    from phasezoo.wsl.table import _stream_weights

    models, layouts = _mixed_depth_models()
    ds = datasets.Dataset.from_dict({"weights": [flatten_state(m).numpy() for m in models]})
    table = _stream_weights(ds, np.ones(3, dtype=bool),
                            ZooTable(zoo_meta(3, cells=3), None, layouts, {}), raw_max_mb=0)
    assert table.weights is None and "streaming budget" in table.note  # raw weights: the budget
    for fn in (layer_statistics, layer_quintiles):  # statistics: the architectures
        with pytest.raises(ValueError, match=r"mixes architectures .*\[4, 6\]"):
            fn(table)
    result = run_benchmark(table, seeds=1, tasks=TASKS[:1])
    assert "mixes architectures" in result["skipped_baselines"]["stats+gbm"]
    assert "streaming budget" in result["skipped_baselines"]["raw+linear"]




def test_zoo_rows_without_a_score_are_dropped_with_the_diverged(published, tmp_path):
    """A checkpoint whose test loss is not finite has a NaN score (Task.evaluate): no target."""
    from phasezoo.wsl.table import load_zoo

    def nan_score(f):
        acc = f["test_accuracy"][:]
        acc[1] = np.nan
        f["test_accuracy"][:] = acc

    whole = load_zoo(str(published[3]))
    table = load_zoo(str(edited_zoo_copy(published[3], tmp_path / "zoo", nan_score)))
    assert len(table) == len(whole) - 1
    dropped = (whole.meta["model_id"][1], whole.meta["epoch"][1])
    assert dropped not in set(zip(table.meta["model_id"], table.meta["epoch"]))
    assert np.isfinite(table.meta["test_accuracy"]).all()


def test_a_killed_report_leaves_no_complete_looking_json(tmp_path, monkeypatch):
    from phasezoo.wsl import benchmark_report as benchmark

    result = run_benchmark(zoo_table([small_mlp(i) for i in range(2)], zoo_meta(2, cells=1)), seeds=1)
    js, md = benchmark.write_report(result, tmp_path)
    assert json.loads(js.read_text())["seeds"] == 1

    def killed(*_args):
        raise KeyboardInterrupt  # the job is stopped while drawing

    monkeypatch.setattr(benchmark, "plot", killed)
    with pytest.raises(KeyboardInterrupt):
        benchmark.write_report(result, tmp_path)
    assert not js.exists()  # the earlier run's JSON is gone: no result that looks complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmark.md", "benchmark.png"]


def test_a_published_zoo_ships_its_splits_and_the_benchmark_reads_them(published, tmp_path):
    """splits.json is in the zoo (checksummed, named in the card), equals the splits computed
    from the zoo's rows, and is what the benchmark scores on."""
    import shutil

    from phasezoo.splits import SHIPPED_SEEDS, computed_splits
    from phasezoo.wsl.table import load_zoo, zoo_splits_of
    from phasezoo.verify import VerifyError, verify

    zoo_dir = published[3]
    assert "splits.json" in (zoo_dir / "SHA256SUMS").read_text()
    assert "## Benchmark splits" in (zoo_dir / "README.md").read_text()
    table = load_zoo(str(zoo_dir))
    shipped = zoo_splits_of(str(zoo_dir), table.meta)
    assert shipped.source.startswith("shipped") and sorted(shipped.shipped) == list(range(SHIPPED_SEEDS))
    computed = computed_splits(table.meta)
    for seed in (0, SHIPPED_SEEDS - 1):
        for a, b in zip(shipped.for_seed(table.meta, seed), computed.for_seed(table.meta, seed),
                        strict=True):
            assert a.name == b.name and all(np.array_equal(getattr(a, k), getattr(b, k))
                                            for k in ("train", "val", "test"))
    copy = tmp_path / "zoo"
    shutil.copytree(zoo_dir, copy)
    (copy / "splits.json").write_text((zoo_dir / "splits.json").read_text().replace("random",
                                                                                  "mine"))
    with pytest.raises(VerifyError, match="splits.json"):
        verify(copy)  # an edited file no longer matches SHA256SUMS


def test_the_benchmark_scores_on_the_splits_a_zoo_ships(tmp_path):
    """A split file naming one test cell: the benchmark tests on exactly that cell's rows."""
    from phasezoo.splits import read_splits

    models, meta = [small_mlp(i) for i in range(48)], zoo_meta(48)
    cells = sorted(meta["cell"].unique())
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"format": 1, "splits": [
        {"name": "random", "seed": 0, "train": cells[2:], "val": cells[1:2], "test": cells[:1]}]}))
    splits = read_splits(path, meta)
    task = tuple(t for t in TASKS if t.name == "test_accuracy")
    result = run_benchmark(zoo_table(models, meta.assign(test_accuracy=np.linspace(0, 1, 48))),
                           seeds=1, baselines={"hparams+gbm": BASELINES["hparams+gbm"]},
                           tasks=task, splits=splits)
    assert [(r["split"], r["n_test"]) for r in result["runs"]] == [("random", 4)]
    assert "shipped with the zoo (splits.json)" in markdown(result)


def test_a_hostile_splits_file_is_refused_with_its_name(tmp_path, monkeypatch):
    from phasezoo import splits as splits_module
    from phasezoo.splits import read_splits

    meta = zoo_meta(24)
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"format": 1, "splits": [
        {"name": "random", "seed": 0, "train": ["c0"], "val": ["c1"], "test": ["../../etc"]}]}))
    with pytest.raises(ValueError, match=r"splits.json: split 0 \(random\) names cells the zoo "
                                         r"does not have: \['../../etc'\]"):
        read_splits(path, meta)
    path.write_text(json.dumps({"format": 1, "splits": [{"name": "random", "seed": "0"}]}))
    with pytest.raises(ValueError, match="split 0 is not"):
        read_splits(path, meta)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON splits file"):
        read_splits(path, meta)
    monkeypatch.setattr(splits_module, "MAX_SPLITS_BYTES", 4)
    with pytest.raises(ValueError, match="more than a splits file may hold"):
        read_splits(path, meta)


def test_splits_do_not_depend_on_the_order_rows_were_read_in():
    from phasezoo.splits import computed_splits

    meta = zoo_meta(48)
    shuffled = meta.sample(frac=1.0, random_state=3).reset_index(drop=True)
    for a, b in zip(computed_splits(meta).for_seed(meta, 1),
                    computed_splits(shuffled).for_seed(shuffled, 1), strict=True):
        assert a.name == b.name
        assert set(meta["model_id"].iloc[a.test]) == set(shuffled["model_id"].iloc[b.test])
