"""phasezoo's SGD is torch.optim.SGD, bit for bit."""

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
    ref = torch.optim.SGD(b.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
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
