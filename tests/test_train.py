"""Population training: determinism, resume after a kill, divergence, schedules."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from phasezoo import train as train_mod
from phasezoo.checkpoints import read_population
from phasezoo.config import load_config
from phasezoo.config_checks import zoo_section_defaults
from phasezoo.recipe import RECIPE_ATTR, RECIPE_ATTR_V0
from phasezoo.settings import TrainSettings
from phasezoo.stacked import StackedModel
from phasezoo.schedules import lr_at
from phasezoo.train import partial_path, train_cell
from phasezoo_testkit import tiny_config

CPU = torch.device("cpu")


def _cell(tmp_path, **train):
    cfg = load_config(tiny_config(tmp_path, **train))
    return cfg, cfg.zoo("tiny").cells()[0]


def test_same_config_and_seed_give_same_weights(trained, tmp_path):
    cfg, cell, first = trained
    again = train_cell(cell, tmp_path / "again.h5", CPU, cfg.data_root, progress=False)
    a, b = read_population(first), read_population(again)
    assert np.array_equal(a.kept_weights, b.kept_weights)
    assert not np.array_equal(a.kept_weights[0], a.kept_weights[1])  # seeds differ
    assert not np.array_equal(a.kept_weights[0, 0], a.kept_weights[0, -1])  # training moved them
    assert a.curves[:, 3, -1].min() > 0.5  # it learned: test accuracy well above chance (0.1)


class Killed(Exception):
    pass


def test_killed_job_resumes_to_identical_weights(trained, tmp_path, monkeypatch):
    cfg, cell, reference = trained
    out = tmp_path / "train.h5"
    real_epoch, real_step = train_mod.train_epoch_stacked, StackedModel.sgd_step
    now = {"epoch": 0, "steps": 0}

    def counting_epoch(members, split, hp, epoch, lr_scale=None):
        now.update(epoch=epoch, steps=0)
        return real_epoch(members, split, hp, epoch, lr_scale)

    def dies_mid_epoch_3(self, *args):
        now["steps"] += 1
        if now["epoch"] == 3 and now["steps"] == 4:  # mid-epoch: some updates already applied
            raise Killed
        return real_step(self, *args)

    monkeypatch.setattr(train_mod, "train_epoch_stacked", counting_epoch)
    monkeypatch.setattr(StackedModel, "sgd_step", dies_mid_epoch_3)
    with pytest.raises(Killed):
        train_cell(cell, out, CPU, cfg.data_root, progress=False)
    assert not out.exists()  # nothing that looks finished
    with h5py.File(partial_path(out)) as f:
        assert int(f.attrs["epochs_done"]) == 2 and not f.attrs["complete"]
    with pytest.raises(ValueError, match="not complete"):
        read_population(partial_path(out))

    monkeypatch.setattr(StackedModel, "sgd_step", real_step)
    seen = []
    monkeypatch.setattr(train_mod, "train_epoch_stacked",
                        lambda m, s, hp, e, lr_scale=None: seen.append(e) or real_epoch(m, s, hp, e))
    train_cell(cell, out, CPU, cfg.data_root, progress=False)
    assert set(seen) == {3}  # resumed after the last completed epoch
    assert not partial_path(out).exists()
    np.testing.assert_array_equal(read_population(out).kept_weights,
                                  read_population(reference).kept_weights)


def test_train_h5_records_the_cells_recipe_and_older_files_still_read(trained, tmp_path):
    """The file holds the recipe's record under its versioned key; a file written before that
    key existed (the same record under ``hparams``) reads to the same recipe."""
    _, cell, first = trained
    assert read_population(first).recipe == cell.recipe
    older = tmp_path / "older.h5"
    older.write_bytes(first.read_bytes())
    with h5py.File(older, "r+") as f:
        f.attrs[RECIPE_ATTR_V0] = f.attrs[RECIPE_ATTR]
        del f.attrs[RECIPE_ATTR]
    assert read_population(older).recipe == cell.recipe
    with h5py.File(older, "r+") as f:
        del f.attrs[RECIPE_ATTR_V0]
    with pytest.raises(ValueError, match=f"older.h5: no '{RECIPE_ATTR}' attribute"):
        read_population(older)


def test_partial_from_another_config_is_not_resumed(trained, tmp_path):
    cfg, cell, _ = trained
    _, other = _cell(tmp_path, lr=0.01)
    out = tmp_path / "train.h5"
    with h5py.File(partial_path(out), "w") as f:
        f.attrs["fingerprint"] = other.fingerprint()
    train_cell(cell, out, CPU, cfg.data_root, progress=False)
    assert read_population(out).curves.shape[2] == 4


def test_divergence_is_marked_and_does_not_crash(tmp_path):
    cfg, cell = _cell(tmp_path, lr=1e4, momentum=0.0, weight_decay=0.0)
    pop = read_population(train_cell(cell, tmp_path / "t.h5", CPU, cfg.data_root, progress=False))
    assert (pop.diverged_epoch >= 1).all()
    assert np.isfinite(pop.kept_weights).all()  # last finite weights are kept
    d = int(pop.diverged_epoch[0])
    assert np.isnan(pop.curves[0, :, d:]).all() and np.isfinite(pop.curves[0, :, :d]).all()


@pytest.mark.parametrize("vectorize, check_every", [(True, None), (False, None), (False, 1000)])
def test_one_member_diverging_leaves_the_others_alone(vectorize, check_every, monkeypatch,
                                                      tmp_path):
    """``check_every`` 1000: the one-by-one trainer looks at its finite flag only at the epoch's
    end (as on a GPU, where it looks every 32 steps), and must mark and restore the same."""
    cfg, cell = _cell(tmp_path, vectorize=vectorize)
    if check_every:
        monkeypatch.setattr(train_mod, "finite_check_every", lambda device: check_every)
    reference = train_cell(cell, tmp_path / "ref.h5", CPU, cfg.data_root, progress=False)
    if vectorize:
        real_step = StackedModel.sgd_step

        def seed1_explodes(self, *args):  # member 1 of a 2-member stack
            losses = real_step(self, *args)
            return losses * torch.tensor([1.0, float("nan")]) if self.k == 2 else losses

        monkeypatch.setattr(StackedModel, "sgd_step", seed1_explodes)
    else:
        real_member_step = train_mod.sgd_step

        def seed1_explodes(member, xb, yb, lr, task):
            loss = real_member_step(member, xb, yb, lr, task)
            return loss * float("nan") if member.seed == 1 else loss

        monkeypatch.setattr(train_mod, "sgd_step", seed1_explodes)
    pop = read_population(train_cell(cell, tmp_path / "t.h5", CPU, cfg.data_root, progress=False))
    ref = read_population(reference)
    assert pop.diverged_epoch.tolist() == [-1, 1]
    # Seed 0 trains on in a 1-member stack after epoch 1: same arithmetic up to rounding.
    np.testing.assert_allclose(pop.kept_weights[0], ref.kept_weights[0], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(pop.kept_weights[1, 1], ref.kept_weights[1, 0])  # init kept


def _train(**keys) -> TrainSettings:
    """The schema's train settings with ``keys`` set."""
    return TrainSettings.of({**zoo_section_defaults("train"), **keys})


def test_onecycle_matches_torch():
    hp = _train(lr=0.1, schedule="onecycle", epochs=5, onecycle_pct_start=0.3)
    steps_per_epoch = 7
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=35,
                                                cycle_momentum=False)
    for step in range(35):
        assert lr_at(step, steps_per_epoch, hp) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


def test_step_schedule():
    hp = _train(lr=1.0, schedule="step", step_milestones=[2, 4], step_gamma=0.1)
    assert [lr_at(e * 10, 10, hp) for e in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def _lr_cells(tmp_path, rates, **train):
    """Cells of a tiny zoo whose temperature axis is the learning rate (one load value)."""
    raw = tiny_config(tmp_path, **{"batch_size": 256, **train})
    raw["zoos"]["tiny"]["temperature"] = {"name": "lr", "values": list(rates)}
    cfg = load_config(raw)
    return cfg, cfg.zoo("tiny").cells()


def test_learning_rate_cells_train_as_one_population_like_each_alone(tmp_path, monkeypatch):
    cfg, cells = _lr_cells(tmp_path, [0.05, 0.1, 1e4])
    solo = [read_population(train_cell(c, tmp_path / f"solo{i}.h5", CPU, cfg.data_root,
                                       progress=False)) for i, c in enumerate(cells)]
    stacks = []
    real = train_mod.train_epoch_stacked
    monkeypatch.setattr(train_mod, "train_epoch_stacked",
                        lambda m, *a: stacks.append(len(m)) or real(m, *a))
    outs = train_mod.train_cells(cells, [tmp_path / f"g{i}.h5" for i in range(3)], CPU,
                                 cfg.data_root, progress=False)
    assert stacks[0] == 6  # 3 rates × 2 seeds in one stack
    grouped = [read_population(o) for o in outs]
    for g, s in zip(grouped[:2], solo[:2]):
        assert (g.diverged_epoch == -1).all()
        np.testing.assert_allclose(g.kept_weights, s.kept_weights, rtol=0, atol=1e-5)
        np.testing.assert_allclose(g.curves, s.curves, rtol=0, atol=1e-4)
    assert (grouped[2].diverged_epoch == solo[2].diverged_epoch).all()
    assert (grouped[2].diverged_epoch >= 1).all()  # lr 1e4 diverges, alone or in the group
    assert not any(partial_path(o).exists() for o in outs)
    assert not train_mod.group_partial_path(cells, outs).exists()


def test_killed_group_resumes_and_a_new_rate_catches_up(tmp_path, monkeypatch):
    cfg, cells = _lr_cells(tmp_path, [0.02, 0.05, 0.1])
    outs = [tmp_path / f"g{i}.h5" for i in range(3)]
    real_step = StackedModel.sgd_step
    calls = {"n": 0}

    def dies_in_epoch_2(self, *args):  # 4,000 images / 256 = 16 steps per epoch
        calls["n"] += 1
        if calls["n"] == 20:
            raise Killed
        return real_step(self, *args)

    monkeypatch.setattr(StackedModel, "sgd_step", dies_in_epoch_2)
    with pytest.raises(Killed):  # the first two rates only: the third is "added" afterwards
        train_mod.train_cells(cells[:2], outs[:2], CPU, cfg.data_root, progress=False)
    monkeypatch.setattr(StackedModel, "sgd_step", real_step)
    part = train_mod.group_partial_path(cells[:2], outs[:2])
    assert part == tmp_path / ".train-rates-width-16.partial"
    assert part == train_mod.group_partial_path(cells, outs)  # one file whatever the rates
    with h5py.File(part) as f:
        assert sorted(f) == sorted(c.id for c in cells[:2])
        assert all(int(f[c.id].attrs["epochs_done"]) == 1 for c in cells[:2])
    stacks = []
    real = train_mod.train_epoch_stacked
    monkeypatch.setattr(train_mod, "train_epoch_stacked",
                        lambda m, *a: stacks.append(len(m)) or real(m, *a))
    train_mod.train_cells(cells, outs, CPU, cfg.data_root, progress=False)
    assert stacks == [2, 6, 6]  # the new rate's epoch 1 alone, then all three rates stacked
    for i, c in enumerate(cells):
        alone = train_cell(c, tmp_path / f"solo{i}.h5", CPU, cfg.data_root, progress=False)
        np.testing.assert_allclose(read_population(outs[i]).kept_weights,
                                   read_population(alone).kept_weights, rtol=0, atol=1e-5)


def test_a_cell_named_twice_is_refused(tmp_path):
    cfg, cells = _lr_cells(tmp_path, [0.02, 0.05])
    with pytest.raises(ValueError, match="named twice"):
        train_mod.train_cells([cells[0], cells[0]], [tmp_path / "a.h5", tmp_path / "b.h5"], CPU,
                              cfg.data_root)


def test_cells_that_differ_in_more_than_the_rate_are_refused(tmp_path):
    raw = tiny_config(tmp_path, batch_size=256)
    raw["zoos"]["tiny"]["temperature"] = {"name": "lr", "values": [0.05]}
    raw["zoos"]["tiny"]["load"] = {"name": "width", "values": [4, 8]}
    cfg = load_config(raw)
    cells = cfg.zoo("tiny").cells()
    outs = [tmp_path / "a.h5", tmp_path / "b.h5"]
    with pytest.raises(ValueError, match="differ in more than the learning rate"):
        train_mod.train_cells(cells, outs, CPU, cfg.data_root)
    raw = tiny_config(tmp_path)
    raw["zoos"]["tiny"]["temperature"] = {"name": "batch_size", "values": [64, 256]}
    cells = load_config(raw).zoo("tiny").cells()
    with pytest.raises(ValueError, match="only cells of a learning-rate axis"):
        train_mod.train_cells(cells, outs, CPU, cfg.data_root)
