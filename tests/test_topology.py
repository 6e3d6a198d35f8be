"""Topological landscape profiles: persistence against hand-computed landscapes, the plane's
directions against the exact Hessian, the plane's values against direct evaluation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from phasezoo.landscape.hessian import hessian_top_eigenvectors
from phasezoo.landscape.topology import (flat_params, loss_plane, persistence_pairs,
                                         profile_summary)


def _two_wells(steps: int) -> np.ndarray:
    x = np.linspace(-2, 2, steps)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    return np.minimum((xx + 1) ** 2 + yy ** 2, (xx - 1) ** 2 + yy ** 2 + 0.5)


def test_two_wells_merge_at_the_cheapest_crossing():
    """Minima 0 at (−1, 0) and 0.5 at (1, 0); any path crosses x = 1/8, cheapest on y = 0
    between the grid columns x = 0 (value 1) and x = 0.2 (1.14): the shallow well dies at 1.14
    (at 1.21 on the 41-point grid, whose column x = 0.1 has min(1.21, 1.31))."""
    for steps, death in ((21, 1.14), (41, 1.21)):
        pairs = persistence_pairs(_two_wells(steps))
        assert pairs[0, 0] == 0 and np.isinf(pairs[0, 1])
        np.testing.assert_allclose(pairs[1], [0.5, death], atol=1e-12)
    s = profile_summary(_two_wells(21))
    assert s["topo_minima"] == 2
    assert s["topo_total_persistence"] == pytest.approx(0.64)
    assert s["topo_max_persistence"] == pytest.approx(0.64)
    assert s["topo_loss_range"] == pytest.approx(5.5)


def test_three_minima_in_one_dimension_and_no_diagonal_neighbours():
    pairs = persistence_pairs(np.array([3.0, 1, 4, 0, 5, 2, 6]))
    np.testing.assert_array_equal(pairs, [[0, np.inf], [1, 4], [2, 5]])
    s = profile_summary(np.array([3.0, 1, 4, 0, 5, 2, 6]))
    assert (s["topo_total_persistence"], s["topo_max_persistence"], s["topo_mean_gap"]) == (6, 3, 3)
    # the grid is 4-connected: diagonal cells are not neighbours
    np.testing.assert_array_equal(persistence_pairs(np.array([[0.0, 9], [9, 1]])),
                                  [[0, np.inf], [1, 9]])


def test_a_sum_of_gaussian_wells_has_one_minimum_per_well():
    x = np.linspace(-3, 3, 61)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    wells = [(-1.5, -1.5, 1.0), (1.5, -1.0, 0.7), (0.0, 1.5, 0.4)]
    f = -sum(a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.5) for cx, cy, a in wells)
    pairs = persistence_pairs(f)
    assert len(pairs) == 3
    np.testing.assert_allclose(pairs[:, 0], [-1.0, -0.7, -0.4], atol=0.01)  # each well's floor


def _tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    return model, torch.randn(16, 3, dtype=torch.float64), torch.randint(0, 2, (16,))


def test_the_plane_is_spanned_by_the_exact_top_eigenvectors():
    model, x, y = _tiny()
    loss = nn.functional.cross_entropy
    theta = flat_params(model)
    shapes = [p.shape for p in model.parameters()]

    def f(flat):
        params, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            params.append(flat[i:i + n].view(s))
            i += n
        h = torch.tanh(x @ params[0].T + params[1])
        return loss(h @ params[2].T + params[3], y)

    exact = torch.autograd.functional.hessian(f, theta)
    evals, evecs = torch.linalg.eigh(exact)
    values, vectors = hessian_top_eigenvectors(model, loss, [(x, y)], 2, max_iter=len(theta))
    np.testing.assert_allclose(values, evals.flip(0)[:2].numpy(), rtol=1e-8)
    for v, e in zip(vectors, evecs.flip(1).T[:2]):
        assert abs(float(v @ e)) == pytest.approx(1.0, abs=1e-8)
    np.testing.assert_allclose((vectors @ vectors.T).numpy(), np.eye(2), atol=1e-10)


def test_the_plane_values_are_the_shifted_models_losses():
    model, x, y = _tiny()
    loss = nn.functional.cross_entropy
    before = copy.deepcopy(model.state_dict())
    d = torch.linalg.qr(torch.randn(flat_params(model).numel(), 2, dtype=torch.float64))[0].T
    grid, offsets = loss_plane(model, loss, [(x[:10], y[:10]), (x[10:], y[10:])], d, 5, 0.1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # restored
    shifted = copy.deepcopy(model)
    theta = flat_params(model) + offsets[0] * d[0] + offsets[3] * d[1]
    torch.nn.utils.vector_to_parameters(theta, shifted.parameters())
    with torch.no_grad():
        assert grid[2, 2] == pytest.approx(float(loss(model(x), y)))
        assert grid[0, 3] == pytest.approx(float(loss(shifted(x), y)))
