"""Full-size rows: the format's card, shard writer and readers, and ``phasezoo rehearse``."""

from __future__ import annotations

import json
import shutil

import datasets
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from phasezoo.hub_card import MIN_READ_BATCH, READ_BATCH_BYTES, read_batch_size
from phasezoo.cli import main
from phasezoo.config import load_config
from phasezoo.estimate import architecture_cost, published_bytes
from phasezoo.rehearsal import initial_population, largest_cell, rehearse
from phasezoo.weights import flatten_state
from phasezoo.verify import VerifyError, verify
from phasezoo.zoo import load_model, write_checksums, write_shard

MINI = "config/zoos/resnet50-cifar10-mini.yaml"


def test_read_batch_size_follows_the_row_size():
    assert read_batch_size(375_641_919) == MIN_READ_BATCH == 2  # ResNet-50 at width 256
    n = read_batch_size(118_282)  # the default MLP: the most float32 rows within the budget
    assert n * 4 * 118_282 <= READ_BATCH_BYTES < (n + 1) * 4 * 118_282
    assert read_batch_size(10) == 1000  # capped at datasets' writer batch
    for row in (10, 10 ** 5, 10 ** 7, 4 * 10 ** 8):  # a read batch stays within budget or 2 rows
        assert read_batch_size(row) * row * 4 <= max(READ_BATCH_BYTES, 2 * 4 * row)


def test_card_declares_weights_as_large_list(published):
    """64-bit offsets: the whole weight column slices and concatenates past 2^31 values."""
    ds = datasets.load_dataset(str(published[3]), split="train")
    assert ds.data.column("weights").type == pa.large_list(pa.float32())
    assert ds.features["layer_alpha"] == datasets.List(datasets.Value("float64"))


def test_verify_refuses_a_card_whose_features_miss_a_column(published, tmp_path):
    zoo = tmp_path / "zoo"
    shutil.copytree(published[3], zoo)
    card = (zoo / "README.md").read_text()
    (zoo / "README.md").write_text(card.replace("  - name: test_accuracy\n    dtype: float64\n", "", 1))
    write_checksums(zoo)
    with pytest.raises(VerifyError, match="features do not match.*test_accuracy"):
        verify(zoo)


def _table(n: int) -> pd.DataFrame:
    return pd.DataFrame({"cell": ["c"] * n, "seed": range(n)})


def test_write_shard_refuses_rows_of_two_lengths_and_missing_rows(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="row 1 has 3 values, row 0 has 4"):
        write_shard(tmp_path / "a.h5", _table(2), [np.zeros(4), np.zeros(3)])
    with pytest.raises(ValueError, match="1 weight rows for 2 table rows"):
        write_shard(tmp_path / "a.h5", _table(2), [np.zeros(4)])
    monkeypatch.setattr("phasezoo.zoo.MAX_ROW_VALUES", 3)
    with pytest.raises(ValueError, match="a row has 4 values; the format holds 1 to 3"):
        write_shard(tmp_path / "a.h5", _table(1), [np.zeros(4)])
    assert not list(tmp_path.iterdir())  # nothing left that looks written
    path, length = write_shard(tmp_path / "b.h5", _table(2), iter([np.ones(3), np.full(3, 2.0)]))
    with h5py.File(path) as f:
        assert f["weights"].shape == (2, 3) and f["weights"].dtype == np.float32
        np.testing.assert_array_equal(f["weights"][1], [2, 2, 2])


def test_load_model_takes_a_read_only_view_and_owns_its_memory():
    from phasezoo.models import create_model
    from phasezoo.weights import describe

    kw = {"width": 4, "input_shape": [3, 8, 8], "num_classes": 5}
    ref = create_model("resnet18", **kw).eval()
    flat = flatten_state(ref).numpy()
    flat.flags.writeable = False  # as a memory-mapped Arrow row is
    row = {"weights": flat, "layout": json.dumps(describe(ref, {"name": "resnet18", "kwargs": kw}))}
    model = load_model(row)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model(x), ref(x)) and not model.training
    assert all(p.requires_grad for p in model.parameters())
    assert not np.shares_memory(next(model.parameters()).detach().numpy(), flat)
    assert torch.equal(load_model({**row, "weights": flat.tolist()})(x), ref(x))


def test_rehearsal_of_a_mini_zoo_publishes_loads_and_matches_initial_weights(tmp_path):
    zoo = load_config(MINI).zoo("resnet50-cifar10-mini")
    cell = largest_cell(zoo)
    assert cell.recipe.model.width == max(zoo.load.values)
    report = rehearse(zoo, [cell], [3, 5], tmp_path, say=lambda _: None, isolate=False)
    assert [s.name.split(":")[0] for s in report.steps] == [
        "publish", "verify", "load_dataset", "read every row", "read every row", "load_model"]
    assert all(s.peak_bytes > 0 and s.seconds >= 0 for s in report.steps)
    assert "2 rows bit-identical" in report.steps[3].detail == report.steps[4].detail
    zoo_dir = tmp_path / "zoos" / zoo.name
    assert verify(zoo_dir) == 2 and report.zoo_bytes > 8 * report.row_values
    assert "Rehearsal" in (zoo_dir / "README.md").read_text()
    ds = datasets.load_dataset(str(zoo_dir), split="train").with_format("numpy")
    pop = initial_population(zoo, cell, [3, 5])
    for i, seed in enumerate([3, 5]):  # the rows are those seeds' initialisations, bit for bit
        assert ds[i]["seed"] == seed and ds[i]["phase"] == "rehearsal"
        np.testing.assert_array_equal(ds[i]["weights"], pop.kept_weights[i, 0])
    assert json.loads((tmp_path / "rehearsal.json").read_text())["rows"] == 2
    # phasezoo estimate's published sizes (calibrated on MLP zoos) match this ResNet-50 zoo
    width = cell.recipe.model.width
    zoo_bytes, cache_bytes = published_bytes(zoo, {width: architecture_cost(zoo, width)},
                                             rows_per_cell=2, cells=[cell])
    assert zoo_bytes == pytest.approx(report.zoo_bytes, rel=0.05)
    assert cache_bytes == pytest.approx(report.arrow_cache_bytes, rel=0.05)


def test_rehearse_cli_names_a_bad_cell_and_repeated_seeds(tmp_path, capsys):
    assert main(["rehearse", "--config", MINI, "--cell", "nope", "--out", str(tmp_path)]) == 2
    assert "--cell nope: not a cell of resnet50-cifar10-mini" in capsys.readouterr().err
    assert main(["rehearse", "--config", MINI, "--seeds", "1", "1", "--out", str(tmp_path)]) == 2
    assert "a seed is given twice" in capsys.readouterr().err


@pytest.mark.bigmem
def test_widest_resnet50_cell_past_2_31_values_publishes_and_loads(tmp_path):
    """The catalogue's largest rows (376M values) × 6 seeds = 2.25G values: > 2^31 in one
    zoo, every row read back bit for bit in memory and streamed (~9 GB twice on disk, ~3 min).
    `python -m pytest -m bigmem`; `benchmarks/rehearsal.py` prints the same figures."""
    zoo = load_config("config/zoos/resnet50-cifar10.yaml").zoo("resnet50-cifar10")
    report = rehearse(zoo, [largest_cell(zoo)], list(range(6)), tmp_path)
    assert report.rows * report.row_values > 2 ** 31
    assert all("6 rows bit-identical" in s.detail for s in report.steps[3:5])
