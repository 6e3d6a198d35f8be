"""phasezoo's SGD is torch.optim.SGD (its fused kernel), bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch

from phasezoo.optim import SGD


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 5e-4), (0.5, 1e-2)])
def test_matches_torch_sgd_exactly(momentum, weight_decay):
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    b = copy.deepcopy(a)
    ours = SGD(a.parameters(), momentum=momentum, weight_decay=weight_decay)
    ref = torch.optim.SGD(b.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay,
                          fused=True)
    for step in range(25):
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        lr = 0.1 / (1 + step)
        for group in ref.param_groups:
            group["lr"] = lr
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
        ours.step(lr)
        ref.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_per_parameter_scales_match_torch_parameter_groups():
    """Layer-wise rates (TempBalance): scales[i] = torch's group lr / base lr, changed mid-run."""
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    b = copy.deepcopy(a)
    ours = SGD(a.parameters(), momentum=0.9, weight_decay=5e-4)
    params = list(b.parameters())
    ref = torch.optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1,
                          momentum=0.9, weight_decay=5e-4, fused=True)
    for step in range(20):
        scales = (0.5, 1.5) if step < 10 else (1.25, 0.75)
        ours.scales = [scales[0]] * 2 + [scales[1]] * 2
        for group, s in zip(ref.param_groups, scales):
            group["lr"] = 0.1 * s
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
        ours.step(0.1)
        ref.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_non_contiguous_parameters_are_updated_correctly():
    """ATen's fused kernel misreads non-contiguous tensors; phasezoo's SGD goes through a
    contiguous copy for them, so a transposed parameter steps like a contiguous one."""
    torch.manual_seed(0)
    base = torch.randn(4, 3)
    grad = torch.randn(4, 3)
    plain = base.clone().requires_grad_()
    transposed = base.t().contiguous().t().requires_grad_()  # same values, column-major
    assert not transposed.is_contiguous()
    for p in (plain, transposed):
        p.grad = grad.clone()
    for p in (plain, transposed):
        opt = SGD([p], momentum=0.9, weight_decay=5e-4)
        opt.step(0.1)
        opt.step(0.1)
    assert torch.equal(plain, transposed)
    torch.testing.assert_close(plain, base - 0.1 * (grad + 5e-4 * base)
                               - 0.1 * (0.9 * (grad + 5e-4 * base) + grad + 5e-4 * (
                                   base - 0.1 * (grad + 5e-4 * base))))
