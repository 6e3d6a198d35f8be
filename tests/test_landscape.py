"""Linear CKA against its Gram-matrix definition, and the linear-interpolation barrier."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from phasezoo.data import Split
from phasezoo.landscape import interpolation_barrier, linear_cka
from phasezoo.landscape.connectivity import (CurveSettings, mc_of, mc_peak, mode_connectivity,
                                             recompute_bn_stats)


def gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear kernels, centred by H."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float(np.sum(kx * ky) / np.sqrt(np.sum(kx * kx) * np.sum(ky * ky)))


def test_cka_matches_gram_formula_in_float64():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 10, generator=g)
    y = x @ torch.randn(10, 6, generator=g) + 0.5 * torch.randn(50, 6, generator=g)
    assert linear_cka(x, y) == pytest.approx(gram_cka(x.double().numpy(), y.double().numpy()),
                                             abs=1e-12)


def test_cka_identity_orthogonal_and_scale_invariance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 8, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-12)
    y = torch.randn(40, 5, generator=g, dtype=torch.float64)
    assert linear_cka(x, 7.5 * y) == pytest.approx(linear_cka(x, y), abs=1e-12)
    assert linear_cka(x, y) < 0.9


def _toy_split():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return Split(x, y, x, y, 2)


def test_identical_models_have_no_barrier():
    model = torch.nn.Linear(2, 2)
    out = interpolation_barrier(model, copy.deepcopy(model), _toy_split(), 5, 100)
    assert out["linear_barrier"] == 0.0


def _mlp(w1, w2):
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(w1)), m[0].bias.zero_()
        m[2].weight.copy_(torch.tensor(w2)), m[2].bias.zero_()
    return m


def test_permuted_solutions_have_a_barrier():
    """Two hidden-unit orderings of one perfect MLP: the midpoint's hidden layer is zero."""
    a = _mlp([[1.0, 0.0], [-1.0, 0.0]], [[-1.0, 1.0], [1.0, -1.0]])
    b = _mlp([[-1.0, 0.0], [1.0, 0.0]], [[1.0, -1.0], [-1.0, 1.0]])  # units swapped
    split = _toy_split()
    out = interpolation_barrier(a, b, split, 11, 100)
    share_class0 = 100.0 * float((split.y_train == 1).float().mean())  # ties → class 0
    assert out["linear_barrier"] == pytest.approx(-share_class0) and out["linear_barrier_t"] == 0.5


def test_linear_models_have_no_barrier_between_solutions():
    """Logits interpolate linearly, so two perfect linear classifiers stay perfect in between."""
    split = _toy_split()
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]])), a.bias.zero_()
        b.weight.copy_(torch.tensor([[-9.0, 0.05], [9.0, -0.05]])), b.bias.zero_()
    out = interpolation_barrier(a, b, split, 11, 100)
    assert abs(out["linear_barrier"]) < 1.0


def _abs_task(n: int = 400) -> Split:
    """Class 1 iff |x0| > 1: a width-2 ReLU net needs both hidden units, one per side."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g) * 1.5
    y = (x[:, 0].abs() > 1).long()
    return Split(x, y, x, y, 2)


def _abs_net(swap: bool) -> torch.nn.Module:
    w1 = [[1.0, 0.0], [-1.0, 0.0]]
    w2 = [[0.0, 0.0], [10.0, 10.0]]
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(w1[::-1] if swap else w1))
        m[0].bias.fill_(-1.0)
        m[2].weight.copy_(torch.tensor(w2))
        m[2].bias.copy_(torch.tensor([0.5, 0.0]))
    return m


# The mechanics of curve training on toy nets (no L2 on θ(t), a constant rate); the anchors'
# recipes are tested on their own terms below.
FAST = CurveSettings(epochs=30, lr=0.05, momentum=0.9, batch_size=50, points=21, seed=0,
                     weight_decay=0.0, schedule="constant")


def test_mc_peak_is_the_worst_interior_error_negated():
    """The MD tree's mode_connectivity_peak: −max(tr_err[1:-1]); the ends never count."""
    assert mc_peak([90.0, 30.0, 50.0, 20.0, 95.0]) == -50.0
    assert mc_peak([1.0, 2.0, 1.0]) == -2.0
    assert np.isnan(mc_peak([3.0, 4.0]))


def test_mc_of_convention():
    assert mc_of([10.0, 10.0, 60.0, 10.0, 10.0]) == (-50.0, 0.5)  # barrier → negative
    assert mc_of([80.0, 20.0, 80.0]) == (60.0, 0.5)  # better middle → positive
    assert mc_of([5.0, 5.0, 5.0])[0] == 0.0


def test_two_copies_of_one_model_are_connected():
    split = _abs_task()
    a = _abs_net(swap=False)
    out = mode_connectivity(a, copy.deepcopy(a), split, FAST, 400)
    assert abs(out["mc"]) <= 1.0  # connected on error
    assert out["mc_loss"] > -0.01  # no loss barrier (the curve may improve an unconverged loss)


def test_permuted_solutions_are_separated_by_a_barrier():
    """Each hidden unit's weight must cross zero on any path from A to its permutation B."""
    split = _abs_task()
    a, b = _abs_net(swap=False), _abs_net(swap=True)
    assert interpolation_barrier(a, b, split, 11, 400)["linear_barrier"] < -10
    out = mode_connectivity(a, b, split, FAST, 400)
    assert out["mc"] < -5.0


def test_under_trained_ends_give_positive_mc():
    split = _abs_task()
    torch.manual_seed(3)
    a = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    b = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    out = mode_connectivity(a, b, split, FAST, 400)
    assert out["mc"] > 5.0 and out["mc_loss"] > 0


def test_batchnorm_statistics_are_recomputed():
    m = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    x = torch.randn(500, 2) * 4 + 3
    recompute_bn_stats(m, x, 128)  # batches of 128, 128, 128, 116: weighted by their sizes
    h = m[0](x).detach()
    torch.testing.assert_close(m[1].running_mean, h.mean(0), rtol=1e-5, atol=1e-5)
    parts = h.split(128)  # the anchors' update_bn: each batch's unbiased variance, sample-weighted
    var = sum(len(p) * p.var(0, unbiased=True) for p in parts) / len(h)
    torch.testing.assert_close(m[1].running_var, var, rtol=1e-5, atol=1e-5)
    assert not m.training and m[1].momentum == 0.1  # its own momentum back
