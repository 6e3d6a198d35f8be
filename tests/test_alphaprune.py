"""AlphaPruning's α and sparsity allocation against a known power law and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from phasezoo.wsl.alphaprune import (alpha_sparsities, hill_alpha, layer_esd, prune_layers,
                                     prunable)


def test_hill_alpha_recovers_a_known_power_law():
    """λ ~ Pareto with density ∝ λ^−α above 1: above its median the sample is again Pareto with
    the same α, which the Hill estimator recovers."""
    rng = np.random.default_rng(0)
    for alpha in (2.0, 3.5):
        esd = np.sort(rng.uniform(size=40_000) ** (-1.0 / (alpha - 1.0)))
        assert hill_alpha(esd) == pytest.approx(alpha, abs=0.05)
    assert np.isnan(hill_alpha(np.ones(10)))


def test_a_conv_esd_pools_its_kernel_slices_scaled_by_root_half():
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    ref = np.sort(np.concatenate([np.linalg.svd(w[:, :, i, j].numpy(), compute_uv=False) ** 2
                                  for i in range(3) for j in range(3)]) * 0.5)
    np.testing.assert_allclose(layer_esd(w), ref, rtol=1e-12)
    lin = torch.randn(7, 5, dtype=torch.float64)
    np.testing.assert_allclose(layer_esd(lin), np.sort(np.linalg.eigvalsh((lin.T @ lin).numpy())),
                               rtol=1e-10)


def test_sparsities_by_hand():
    """r = 0.8, 1.0, 1.2 (ε 0.2) scaled so the weight-count-weighted mean is S."""
    np.testing.assert_allclose(alpha_sparsities([2, 3, 4], [100, 100, 100], 0.5),
                               [0.4, 0.5, 0.6])
    s = alpha_sparsities([2, 3, 4], [300, 100, 100], 0.5)
    np.testing.assert_allclose(s, np.array([0.8, 1.0, 1.2]) * 250 / 460)
    assert np.dot(s, [300, 100, 100]) == pytest.approx(250)
    # equal α: every layer gets S; a share past 1 is capped and the rest take the excess
    np.testing.assert_allclose(alpha_sparsities([3, 3], [10, 30], 0.7), [0.7, 0.7])
    np.testing.assert_allclose(alpha_sparsities([2, 4], [100, 100], 0.95), [0.9, 1.0])
    # a layer without an α is allocated as the mean layer
    np.testing.assert_allclose(alpha_sparsities([2, float("nan"), 4], [100] * 3, 0.5),
                               [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="out of range"):
        alpha_sparsities([2, 3], [1, 1], 1.5)


def test_prune_layers_zeroes_each_layers_smallest_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, 6), nn.ReLU(),
                          nn.Linear(6, 4))
    head = model[-1].weight.detach().clone()
    before = [m.weight.detach().abs().clone() for m in prunable(model)]
    prune_layers(model, np.array([0.25, 0.5]))
    assert torch.equal(model[-1].weight, head)  # the output layer is never pruned
    for w0, m, s in zip(before, prunable(model), (0.25, 0.5)):
        k = round(s * w0.numel())
        zero = m.weight.detach() == 0
        assert int(zero.sum()) == k
        assert w0[zero].max() <= w0[~zero].min()
    assert all(m.bias.abs().min() > 0 for m in prunable(model))
