"""Published zoo: HDF5 → datasets.load_dataset → load_model → the same logits and accuracy."""

from __future__ import annotations

import json

import shutil

import datasets
import h5py
import numpy as np
import pytest
import torch

from phasezoo.checkpoints import read_population
from phasezoo.cli import main
from phasezoo.data import cell_split
from phasezoo.evaluation import evaluate, logits_of
from phasezoo.verify import VerifyError, verify
from phasezoo.zoo import REQUIRED_COLUMNS, load_model


def _copy(zoo_dir, tmp_path):
    dst = tmp_path / "zoo"
    shutil.copytree(zoo_dir, dst)
    return dst


def test_load_dataset_rows_and_columns(published):
    cfg, cell, train_h5, zoo_dir = published
    ds = datasets.load_dataset(str(zoo_dir), split="train")
    pop = read_population(train_h5)
    assert len(ds) == len(pop.seeds) * len(pop.kept_epochs)
    assert set(REQUIRED_COLUMNS) <= set(ds.column_names)
    assert {"hp_lr", "hp_momentum", "hp_weight_decay", "hp_batch_size", "hp_width"} <= set(ds.column_names)
    row = ds[0]
    assert row["zoo"] == "tiny" and row["cell"] == cell.id
    assert row["phase"] in ("I", "II", "III", "IV-A", "IV-B")
    assert row["temperature_name"] == "batch_size" and row["temperature_value"] == 256
    assert row["model_id"] == f"tiny/{cell.id}/seed-0"
    # Per-layer HT-SR lists, aligned with the layout's layer names, as the metrics computed them.
    from phasezoo.metrics import HTSR_LAYER_COLUMNS, htsr_columns
    from phasezoo.zoo import load_model

    names = json.loads(row["layout"])["htsr_layers"]
    assert names == ["1", "3"]  # mlp depth 1: Flatten, Linear, ReLU, Linear
    expected = htsr_columns([load_model(row)], cfg.zoo("tiny").metrics)[0]
    for col in HTSR_LAYER_COLUMNS.values():
        assert len(row[col]) == len(names)
        # the stage's batched pass and this one model's SVD differ in the last bits
        np.testing.assert_allclose(row[col], expected[col], rtol=1e-12)
    for col in ("layer_alpha", "layer_farms_alpha", "layer_stable_rank"):
        assert np.isfinite(row[col]).all(), col  # width 16: every layer fitted


def test_published_alpha_is_weightwatchers_on_the_loaded_model(published):
    """The per-layer α of a published row against WeightWatcher 0.7.7 run on the model that
    ``load_model`` rebuilds from the row (an independent implementation; 1e-6 relative, the
    agreement tests/test_htsr.py holds on every model)."""
    import contextlib
    import io
    import warnings

    from phasezoo.zoo import load_model

    saved = warnings.filters[:]
    import weightwatcher  # its import silences every warning; restored below

    warnings.filters[:] = saved
    ds = datasets.load_dataset(str(published[3]), split="train")
    for row in (ds[0], ds[len(ds) - 1]):  # an initial and a trained checkpoint
        with contextlib.redirect_stdout(io.StringIO()):
            ref = weightwatcher.WeightWatcher(model=load_model(row)).analyze(
                plot=False, randomize=False, mp_fit=False, vectors=False, detX=False,
                savefig=False)
        assert list(ref["longname"]) == json.loads(row["layout"])["htsr_layers"]
        np.testing.assert_allclose(row["layer_alpha"], ref["alpha"].to_numpy(float), rtol=1e-6)
        np.testing.assert_allclose(row["layer_stable_rank"], ref["stable_rank"].to_numpy(float),
                                   rtol=1e-6)


def test_rows_carry_what_the_cell_means_rest_on(published):
    """The pair counts and the label's sensitivity, published per row, equal a plain count over
    the cell's own pairs.parquet and phases.parquet."""
    import math

    import pandas as pd

    _, cell, _, zoo_dir = published
    results = zoo_dir.parents[1] / "results" / "tiny"
    pairs = pd.read_parquet(results / cell.id / "pairs.parquet").to_dict("records")
    phase = pd.read_parquet(results / "phases.parquet").set_index("cell").loc[cell.id]
    finite = sum(1 for p in pairs if math.isfinite(p["cka"]))
    ties = sum(1 for p in pairs if p["mc_end_tie"] == 1.0)
    ds = datasets.load_dataset(str(zoo_dir), split="train")
    assert set(ds["cell_cka_pairs"]) == {finite} and finite >= 1
    assert set(ds["cell_cka_nan_pairs"]) == {0}  # no collapsed model in the tiny cell
    assert set(ds["cell_mc_end_ties"]) == {ties}
    assert set(ds["phase_sensitive_to"]) == {phase["sensitive_to"]}


def test_every_row_rebuilds_the_model_that_produced_its_metrics(published):
    cfg, cell, train_h5, zoo_dir = published
    ds = datasets.load_dataset(str(zoo_dir), split="train")
    pop = read_population(train_h5)
    split = cell_split(cell.recipe, cfg.data_root)
    bs = cell.recipe.train.eval_batch_size
    for row in ds:
        model = load_model(row)
        i = pop.seeds.tolist().index(row["seed"])
        k = pop.kept_epochs.tolist().index(row["epoch"])
        original = pop.model(i, k)
        assert torch.equal(logits_of(model, split.x_test, bs), logits_of(original, split.x_test, bs))
        loss, acc = evaluate(model, split.x_test, split.y_test, bs)
        assert acc == row["test_accuracy"] and loss == row["test_loss"]


def test_verify_accepts_the_published_zoo(published):
    assert verify(published[3]) == 6


def test_verify_names_a_corrupted_shard(published, tmp_path):
    zoo = _copy(published[3], tmp_path)
    shard = next((zoo / "data").glob("*.h5"))
    blob = bytearray(shard.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    shard.write_bytes(bytes(blob))
    with pytest.raises(VerifyError, match=f"data/{shard.name}: SHA-256 mismatch"):
        verify(zoo)


def test_verify_names_a_truncated_shard(published, tmp_path):
    zoo = _copy(published[3], tmp_path)
    shard = next((zoo / "data").glob("*.h5"))
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(VerifyError, match=f"data/{shard.name}: SHA-256 mismatch"):
        verify(zoo)
    (zoo / "SHA256SUMS").unlink()
    with pytest.raises(VerifyError, match="SHA256SUMS: missing"):
        verify(zoo)


def test_verify_names_a_missing_column_and_unreadable_file(published, tmp_path):
    from phasezoo.zoo import write_checksums

    zoo = _copy(published[3], tmp_path)
    shard = next((zoo / "data").glob("*.h5"))
    with h5py.File(shard, "a") as f:
        del f["test_accuracy"]
    write_checksums(zoo)
    with pytest.raises(VerifyError, match=f"data/{shard.name}: missing column 'test_accuracy'"):
        verify(zoo)
    shard.write_bytes(b"not hdf5")
    write_checksums(zoo)
    with pytest.raises(VerifyError, match=f"data/{shard.name}: not a readable HDF5 file"):
        verify(zoo)


def test_cli_verify_exit_codes(published, tmp_path, capsys):
    zoo = _copy(published[3], tmp_path)
    assert main(["verify", str(zoo)]) == 0
    (zoo / "README.md").write_text("tampered")
    assert main(["verify", str(zoo)]) == 2
    assert "README.md: SHA-256 mismatch" in capsys.readouterr().err


def test_no_pickle_anywhere(published):
    for shard in (published[3] / "data").glob("*.h5"):
        with h5py.File(shard) as f:
            for name, ds in f.items():
                assert ds.dtype.kind != "O" or h5py.check_string_dtype(ds.dtype) or \
                    h5py.check_vlen_dtype(ds.dtype) in (np.float32, np.float64), name


def test_republished_zoo_is_not_served_from_a_stale_cache(published, tmp_path):
    """datasets caches local zoos by card and file names; a new zoo must load its new rows."""
    import pandas as pd

    from phasezoo.config import load_config
    from phasezoo.integrity import seal
    from phasezoo.zoo import publish

    cfg, _, _, zoo_dir = published
    results = tmp_path / "results"
    shutil.copytree(zoo_dir.parents[1] / "results", results)
    zoo = load_config({**cfg.raw, "results_dir": str(results)}).zoo("tiny")
    out = publish(zoo, results, tmp_path / "zoos")
    first = set(datasets.load_dataset(str(out), split="train")["phase"])
    assert first != {"IV-B"} and len(first) == 1
    phases = pd.read_parquet(results / "tiny" / "phases.parquet")
    phases["phase"] = "IV-B"
    phases.to_parquet(results / "tiny" / "phases.parquet")
    seal(results / "tiny" / "phases.parquet")  # as a rerun of the phases stage would
    out = publish(zoo, results, tmp_path / "zoos")
    assert set(datasets.load_dataset(str(out), split="train")["phase"]) == {"IV-B"}


@pytest.mark.parametrize("stage", ["validate", "train", "metrics", "pairs", "phases", "publish",
                                   "verify", "list"])
def test_every_stage_has_help(stage, capsys):
    with pytest.raises(SystemExit) as done:
        main([stage, "--help"])
    assert done.value.code == 0 and "usage: phasezoo " + stage in capsys.readouterr().out


def test_load_dataset_refuses_a_zoo_that_lost_rows(published, tmp_path):
    """The card declares the row count; a shard emptied (and re-checksummed) is caught."""
    from phasezoo.zoo import write_checksums

    zoo = _copy(published[3], tmp_path)
    shard = next((zoo / "data").glob("*.h5"))
    with h5py.File(shard, "a") as f:
        cols = {k: f[k][:2] for k in f}
        for k in list(f):
            del f[k]
        for k, v in cols.items():
            f.create_dataset(k, data=v, dtype=v.dtype)
    write_checksums(zoo)
    with pytest.raises(Exception, match="NonMatchingSplitsSizes|expected"):
        datasets.load_dataset(str(zoo), split="train", download_mode="force_redownload")


def test_a_zoo_with_a_diverged_member_publishes_and_verifies(trained, tmp_path, monkeypatch):
    """A diverged checkpoint has NaN metrics and one NaN per layer in the per-layer lists."""
    import torch
    import yaml

    from phasezoo.cli import main
    from phasezoo.stacked import StackedModel
    from phasezoo.train import train_cell

    cfg, cell, _ = trained
    real_step = StackedModel.sgd_step

    def seed1_explodes(self, *args):
        losses = real_step(self, *args)
        return losses * torch.tensor([1.0, float("nan")]) if self.k == 2 else losses

    monkeypatch.setattr(StackedModel, "sgd_step", seed1_explodes)
    cell_dir = tmp_path / "results" / "tiny" / cell.id
    train_cell(cell, cell_dir / "train.h5", torch.device("cpu"), cfg.data_root, progress=False)
    monkeypatch.undo()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**cfg.raw, "results_dir": str(tmp_path / "results"),
                                      "zoos_dir": str(tmp_path / "zoos")}))
    common = ["--config", str(config), "--zoo", "tiny", "--quiet"]
    assert main(["measure", *common, "--cell", cell.id]) == 0
    assert main(["phases", *common]) == 0
    assert main(["publish", *common]) == 0
    zoo = tmp_path / "zoos" / "tiny"
    assert verify(zoo) == 6
    ds = datasets.load_dataset(str(zoo), split="train")
    dead = [r for r in ds if r["diverged"]]
    assert [r["seed"] for r in dead] == [1, 1]  # epochs 1 and 3 of seed 1; its init is alive
    for r in dead:
        assert np.isnan(r["test_accuracy"]) and np.isnan(r["layer_alpha"]).all()
        assert np.isnan(r["topo_minima"]) and len(r["topo_plane"]) == 0
        assert len(r["layer_alpha"]) == len(json.loads(r["layout"])["htsr_layers"])
