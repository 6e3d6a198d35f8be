"""Rows for other tools and for one-row users: safetensors export (the module back, its metadata,
WeightWatcher's α), a row's data (its stored test accuracy) and its Hessian sample (its λmax)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import warnings

import datasets
import numpy as np
import pytest
import torch

from phasezoo.checkpoints import read_population
from phasezoo.cli import main
from phasezoo.evaluation import evaluate, logits_of
from phasezoo.export import (export_file_name, export_file_names, export_zoo, read_metadata,
                             selected_rows)
from phasezoo.models import create_model
from phasezoo.rows import (row_data, row_hessian_sample, row_top_eigenvalue,
                           zoo_hessian_settings)
from phasezoo.zoo import load_model

pytestmark = pytest.mark.filterwarnings(  # inside WeightWatcher 0.7.7, with pandas 3
    "ignore:Passing a dict to DataFrame.from_records is deprecated")


@pytest.fixture(scope="module")
def exported(published, tmp_path_factory):
    """The shared tiny zoo's rows, every one exported, and the rows themselves."""
    zoo_dir = published[3]
    paths = export_zoo(str(zoo_dir), tmp_path_factory.mktemp("exported"), progress=False)
    rows = list(datasets.load_dataset(str(zoo_dir), split="train"))
    return paths, rows


def _file_of(paths, row):
    (path,) = [p for p in paths if p.name == export_file_name(row["cell"], row["seed"],
                                                               row["epoch"])]
    return path


def test_every_row_is_exported_once(exported):
    paths, rows = exported
    assert sorted(p.name for p in paths) == sorted(
        f"{r['cell']}_seed-{r['seed']}_epoch-{r['epoch']}.safetensors" for r in rows)


def test_exported_file_loads_into_the_registry_model_with_the_trained_outputs(published,
                                                                              exported):
    """safetensors alone + create_model (no phasezoo reader) gives the module the train stage
    kept: the same logits, bit for bit, as the population in train.h5."""
    from safetensors.torch import load_file

    cfg, cell, train_h5, _ = published
    paths, rows = exported
    pop = read_population(train_h5)
    x = row_data(rows[0], cfg.data_root).x_test
    for row in rows:
        arch = json.loads(row["layout"])["architecture"]
        model = create_model(arch["name"], **arch["kwargs"])
        model.load_state_dict(load_file(str(_file_of(paths, row))))
        original = pop.model(pop.seeds.tolist().index(row["seed"]),
                             pop.kept_epochs.tolist().index(row["epoch"]))
        assert torch.equal(logits_of(model, x), logits_of(original, x))


def test_metadata_round_trips(exported):
    """Every column but the weights comes back with its value (NaN as None: JSON has no NaN)."""
    paths, rows = exported

    def plain(v):
        if isinstance(v, list):
            return [plain(x) for x in v]
        return None if isinstance(v, float) and math.isnan(v) else v

    for row in rows:
        meta = read_metadata(_file_of(paths, row))
        assert meta.pop("format") == "pt"
        assert meta == {k: plain(v) for k, v in row.items() if k != "weights"}


def test_weightwatcher_on_the_exported_file_gives_the_stored_alpha(exported):
    """WeightWatcher 0.7.7 on the file's state_dict (its own reader of PyTorch state dicts, no
    module, no phasezoo) finds the row's HT-SR layers and their stored α; 1e-6 relative, the
    agreement tests/test_htsr.py holds on every model."""
    from safetensors.torch import load_file

    saved = warnings.filters[:]
    import weightwatcher  # its import silences every warning; restored below

    warnings.filters[:] = saved
    paths, rows = exported
    for row in (rows[0], rows[-1]):  # an initial and a trained checkpoint
        with contextlib.redirect_stdout(io.StringIO()):
            ref = weightwatcher.WeightWatcher(model=load_file(str(_file_of(paths, row)))).analyze(
                plot=False, randomize=False, mp_fit=False, vectors=False, detX=False,
                savefig=False)
        assert list(ref["longname"]) == json.loads(row["layout"])["htsr_layers"]
        np.testing.assert_allclose(row["layer_alpha"], ref["alpha"].to_numpy(float), rtol=1e-6)


def test_row_data_reproduces_the_stored_test_accuracy(published, exported):
    """From the row alone (its hp_* columns and layout): the data on which evaluate, at the
    row's hp_eval_batch_size, gives the stored test and train scores exactly."""
    cfg = published[0]
    _, rows = exported
    split = row_data(rows[0], cfg.data_root)
    for row in rows:
        model, bs = load_model(row), row["hp_eval_batch_size"]
        assert evaluate(model, split.x_test, split.y_test, bs) == (row["test_loss"],
                                                                    row["test_accuracy"])
        assert evaluate(model, split.x_train, split.y_train, bs) == (row["train_loss"],
                                                                      row["train_accuracy"])


def test_the_hessian_sample_reproduces_the_stored_lambda_max(published, exported):
    """The card's settings, the seeded sample and Lanczos from the seeded start give each row's
    stored λmax; the same computation in the same process, so exactly. Another seed draws
    another sample (of the split hessian_top_data names), and another λmax."""
    cfg, _, _, zoo_dir = published
    _, rows = exported
    settings = zoo_hessian_settings(zoo_dir)
    metrics = cfg.zoo("tiny").metrics  # what the card was written from
    assert dataclasses.asdict(settings) == {k: getattr(metrics, k)
                                            for k in dataclasses.asdict(settings)}
    split = row_data(rows[0], cfg.data_root)
    sample = row_hessian_sample(split, settings)
    source = split.x_test if settings.hessian_top_data == "test" else split.x_train
    assert sum(len(x) for x, _ in sample) == min(len(source), settings.hessian_batches
                                                 * settings.hessian_batch_size)
    for row in rows:
        assert row_top_eigenvalue(load_model(row), split, settings) == \
            row["hessian_top_eigenvalue"]
    other = dataclasses.replace(settings, hessian_seed=settings.hessian_seed + 1)
    assert row_top_eigenvalue(load_model(rows[-1]), split, other) != \
        rows[-1]["hessian_top_eigenvalue"]


def test_a_card_with_a_bad_hessian_setting_is_named(published, tmp_path):
    card = (published[3] / "README.md").read_text()
    (tmp_path / "README.md").write_text(card.replace('"hessian_batches": ',
                                                     '"hessian_batches": "ten", "x": ', 1))
    with pytest.raises(ValueError, match="metrics.hessian_batches is 'ten', not a int"):
        zoo_hessian_settings(tmp_path)
    (tmp_path / "README.md").write_text(card.replace('"hessian_seed": ', '"seed": ', 1))
    with pytest.raises(ValueError, match="metrics setting 'hessian_seed' is missing"):
        zoo_hessian_settings(tmp_path)
    (tmp_path / "README.md").write_text("# no settings\n")
    with pytest.raises(ValueError, match="no '## Training and metric settings' JSON block"):
        zoo_hessian_settings(tmp_path)


@pytest.mark.parametrize("cell", ["../../etc/x", "/abs/x", ".hidden", "a/../../b", "..", "c\\d"])
def test_a_cell_name_never_leaves_the_export_folder(cell, tmp_path):
    name = export_file_name(cell, 0, 3)
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()
    assert not name.startswith(".") and "/" not in name and "\\" not in name


def test_two_cells_that_would_share_a_file_are_refused():
    with pytest.raises(ValueError, match="cells 'a/b' and 'a_b' would both be written"):
        export_file_names([("a/b", 0, 1), ("a_b", 0, 1)])
    assert export_file_names([("a_b", 0, 1), ("a_b", 1, 1)]) == [
        "a_b_seed-0_epoch-1.safetensors", "a_b_seed-1_epoch-1.safetensors"]


def test_selection_by_cell_phase_and_epoch():
    cols = {"cell": ["c1", "c1", "c2", "c2"], "phase": ["I", "I", "IV-B", "IV-B"],
            "epoch": [0, 3, 0, 3]}
    assert selected_rows(cols) == [0, 1, 2, 3]
    assert selected_rows(cols, phases=["IV-B"], epochs=[3]) == [3]
    assert selected_rows(cols, cells=["c1", "c2"], epochs=[0]) == [0, 2]
    with pytest.raises(ValueError, match="--phase III: no row has it"):
        selected_rows(cols, phases=["III"])
    with pytest.raises(ValueError, match="no row has all of the selected cell"):
        selected_rows(cols, cells=["c1"], phases=["IV-B"])


def test_export_command(published, exported, tmp_path, capsys):
    zoo_dir = published[3]
    _, rows = exported
    last = max(r["epoch"] for r in rows)
    assert main(["export", str(zoo_dir), "--out", str(tmp_path / "out"), "--epoch", str(last),
                 "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        export_file_name(r["cell"], r["seed"], r["epoch"]) for r in rows if r["epoch"] == last)
    assert main(["export", str(zoo_dir), "--out", str(tmp_path / "none"), "--phase",
                 "no-such-phase"]) == 2
    assert "--phase no-such-phase: no row has it" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
