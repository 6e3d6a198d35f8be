"""Topological landscape profiles: persistence against hand-computed landscapes, the plane's
directions against the exact Hessian, the plane's values against direct evaluation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from phasezoo.landscape.hessian import hessian_top_eigenvalue, hessian_top_eigenvectors
from phasezoo.landscape.topology import flat_params, loss_plane
from phasezoo.persistence import persistence_pairs, profile_summary


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


def test_the_plane_of_a_pinn_uses_its_input_derivatives():
    """The PINN loss differentiates the model with respect to its inputs, so the plane is
    computed with autograd on (as ``ConvectionTask.evaluate`` does); its values are the task's
    own loss of the shifted models, and its eigenvectors come from the same loss."""
    from phasezoo.landscape.topology import hessian_plane
    from phasezoo.tasks import ConvectionTask

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    task = ConvectionTask(1.0)
    x = torch.rand(30, 2, dtype=torch.float64) * torch.tensor([6.28, 1.0], dtype=torch.float64)
    kind = torch.tensor([0] * 20 + [1] * 5 + [2] * 5, dtype=torch.float64)
    x[20:25, 1], x[25:, 0] = 0.0, 0.0  # initial points at t = 0, boundary points at x = 0
    y = torch.stack([kind, torch.sin(x[:, 0] - x[:, 1])], dim=1)
    grid, offsets, values = hessian_plane(model, task, [(x, y)], steps=5, radius=0.05,
                                          max_iter=10)
    assert grid[2, 2] == pytest.approx(float(task.loss(model, x, y).detach()), rel=1e-12)
    assert np.isfinite(grid).all() and values[0] >= values[1]


def _strict_minima(grid: np.ndarray) -> int:
    """Grid points below every axis neighbour, counted with a plain loop (the reference)."""
    n, m = grid.shape
    count = 0
    for i in range(n):
        for j in range(m):
            around = [grid[a, b] for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                      if 0 <= a < n and 0 <= b < m]
            count += all(grid[i, j] < v for v in around)
    return count


def test_measured_profiles_at_the_landscape_epoch_only(published):
    """The measure stage profiles each live checkpoint at the landscape epoch: the plane's centre
    is the model's own mean loss on the Hessian sample, its first axis's eigenvalue is the
    Hessian metric's λmax, its minima are the grid's strict local minima; other epochs hold NaN
    and an empty plane; the published zoo carries the same plane."""
    import datasets
    import pandas as pd
    from torch.nn import functional as F

    from phasezoo.checkpoints import read_population
    from phasezoo.data import cell_split
    from phasezoo.landscape.hessian import sample_batches
    from phasezoo.metrics import TOPOLOGY_COLUMNS

    cfg, cell, train_h5, zoo_dir = published
    s = cfg.zoo("tiny").metrics
    table = pd.read_parquet(zoo_dir.parents[1] / "results" / "tiny" / cell.id / "metrics.parquet")
    pop = read_population(train_h5)
    split = cell_split(cell.recipe, cfg.data_root)
    batches = sample_batches(split.x_train, split.y_train, s.hessian_batches,
                             s.hessian_batch_size, s.hessian_seed)
    last = int(pop.kept_epochs[-1])
    for i, k, epoch in pop.checkpoints():
        row = table[(table["seed"] == int(pop.seeds[i])) & (table["epoch"] == epoch)].iloc[0]
        if epoch != last:
            assert len(row["topo_plane"]) == 0
            assert all(np.isnan(row[c]) for c in TOPOLOGY_COLUMNS)
            continue
        grid = np.asarray(row["topo_plane"]).reshape(s.topology_steps, s.topology_steps)
        model = pop.model(i, k).eval()
        with torch.no_grad():
            centre = sum(float(F.cross_entropy(model(x), y)) * len(x) for x, y in batches)
        centre /= sum(len(x) for x, _ in batches)
        c = s.topology_steps // 2
        assert grid[c, c] == pytest.approx(centre, rel=1e-6)
        assert row["topo_loss_min"] == grid.min() and row["topo_minima"] == _strict_minima(grid)
        # the profile's axes are the training sample's top eigenvectors (under ptmz the stored
        # hessian_top_eigenvalue is the test sample's, so it is recomputed on this one)
        top = hessian_top_eigenvalue(model, F.cross_entropy, batches, tol=s.hessian_tol,
                                     max_iter=s.hessian_max_iter, seed=s.hessian_seed)
        assert row["topo_eigenvalue_1"] == pytest.approx(top, rel=1e-3)
        assert row["topo_eigenvalue_1"] >= row["topo_eigenvalue_2"]
    ds = datasets.load_dataset(str(zoo_dir), split="train")
    for r in ds:
        expected = table[(table["seed"] == r["seed"]) & (table["epoch"] == r["epoch"])].iloc[0]
        np.testing.assert_array_equal(np.asarray(r["topo_plane"], dtype=float),
                                      np.asarray(expected["topo_plane"], dtype=float))


def test_profile_epoch_and_switch_follow_the_config(trained):
    """``metrics.landscape_epoch`` picks the profiled epoch; ``metrics.topology: false`` leaves
    every profile column NaN (and the plane empty) while the other metrics are unchanged."""
    import dataclasses

    from phasezoo.data import cell_split
    from phasezoo.metrics import TOPOLOGY_COLUMNS, cell_metrics

    cfg, cell, train_h5 = trained
    s = dataclasses.replace(cfg.zoo("tiny").metrics, landscape_epoch=1, topology_steps=5)
    split = cell_split(cell.recipe, cfg.data_root)
    on = cell_metrics(train_h5, split, torch.device("cpu"), s, progress=False)
    assert sorted(on.loc[on["topo_minima"].notna(), "epoch"]) == [1, 1]
    assert {len(p) for p in on.loc[on["epoch"] == 1, "topo_plane"]} == {25}
    off = cell_metrics(train_h5, split, torch.device("cpu"),
                       dataclasses.replace(s, topology=False), progress=False)
    assert off[list(TOPOLOGY_COLUMNS)].isna().all().all()
    assert all(len(p) == 0 for p in off["topo_plane"])
    assert off["hessian_trace"].equals(on["hessian_trace"])


def _rewrite_planes(shard, edit) -> None:
    """Replace a shard's ``topo_plane`` column by ``edit(list of row arrays)``."""
    import h5py

    with h5py.File(shard, "a") as f:
        planes = edit([np.asarray(p) for p in f["topo_plane"][:]])
        del f["topo_plane"]
        ds = f.create_dataset("topo_plane", (len(planes),), dtype=h5py.vlen_dtype(np.float64))
        ds[:] = planes


def test_verify_names_a_plane_that_is_not_one_square_grid(published, tmp_path):
    import shutil

    from phasezoo.verify import VerifyError, verify
    from phasezoo.zoo import write_checksums

    zoo = tmp_path / "zoo"
    shutil.copytree(published[3], zoo)
    shard = next((zoo / "data").glob("*.h5"))
    _rewrite_planes(shard, lambda planes: planes[:-1] + [planes[-1][:-1]])  # 440: no grid
    write_checksums(zoo)
    with pytest.raises(VerifyError, match="column 'topo_plane' rows hold"):
        verify(zoo)


def test_verify_names_planes_of_two_sizes_across_shards(published, tmp_path):
    """One zoo, one grid: a shard whose planes are 5 × 5 beside shards of 21 × 21 is refused."""
    import shutil

    from phasezoo.verify import VerifyError, verify
    from phasezoo.zoo import write_checksums

    zoo = tmp_path / "zoo"
    shutil.copytree(published[3], zoo)
    shard = next((zoo / "data").glob("*.h5"))
    other = shard.with_name("other-cell.h5")
    shutil.copy(shard, other)
    _rewrite_planes(other, lambda planes: [p[:25] for p in planes])
    card = zoo / "README.md"  # the card names every shard verify checks
    card.write_text(card.read_text().replace(f"- data/{shard.name}\n",
                                             f"- data/{shard.name}\n    - data/{other.name}\n"))
    write_checksums(zoo)
    with pytest.raises(VerifyError, match="'topo_plane' grids of \\[25, 441\\] values"):
        verify(zoo)


def test_an_even_profile_grid_is_refused():
    from phasezoo.config import load_config
    from phasezoo.config_checks import ConfigError
    from phasezoo_testkit import TINY

    raw = copy.deepcopy(TINY)
    raw["zoos"]["tiny"]["metrics"]["topology_steps"] = 20
    with pytest.raises(ConfigError, match="metrics.topology_steps: 20 is even"):
        load_config(raw)


def test_profile_picture_shows_one_cell_per_phase(tmp_path):
    """The least borderline cell of each phase is pictured; the PNG is written, also empty."""
    import pandas as pd

    from phasezoo.plots import landscape_profiles, profile_cells

    phases = pd.DataFrame({"cell": list("abcde"), "phase": ["II", "I", "II", "diverged", "IV-B"],
                           "margin": [0.1, 0.5, 0.9, np.nan, 0.2]})
    chosen = profile_cells(phases)
    assert chosen["cell"].tolist() == ["b", "c", "e"]
    grid = np.add.outer(np.linspace(-1, 1, 7) ** 2, np.linspace(-1, 1, 7) ** 2)
    out = landscape_profiles([{"title": "bowl", "phase": "I", "grid": grid}], 0.01,
                             tmp_path / "p.png")
    assert out.stat().st_size > 10_000
    assert landscape_profiles([], 0.01, tmp_path / "e.png").stat().st_size > 1_000
