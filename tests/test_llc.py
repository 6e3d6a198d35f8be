"""The local learning coefficient: the same chain as devinterp's sampler, known answers (a regular
model's d/2, the product model's 1/2), invariance to permuting hidden units, the diagnostics, and
the measured columns of a cell and of its published zoo.

Tolerances of the sampled estimates are k standard errors of λ̂ over the run's own chains
(independent noise streams), k = 4, plus the sampler's deterministic bias where a closed form or
a quadrature gives it: nothing is set from an observed value.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from phasezoo.landscape.llc import LLCEstimate, SGLDConfig, estimate_llc
from phasezoo.runtime import stream_seed

K_SE = 4  # standard errors allowed between a sampled λ̂ and its reference


@pytest.fixture(autouse=True)
def one_thread():
    """Thousands of tiny backward passes: on a loaded 2-core machine torch's intra-op pool spends
    30× more time waiting for its second thread than computing (measured: 12 s vs 0.3 s for 300
    steps of the permutation test's MLP)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _stderr(est: LLCEstimate) -> float:
    """Standard error of λ̂ from the spread of the independent chains."""
    return float(est.per_chain.std(ddof=1) / math.sqrt(len(est.per_chain)))


def _orthogonal_design(n: int, d: int, seed: int) -> torch.Tensor:
    """n × d inputs with XᵀX / n = I exactly, so the MSE Hessian is 2·I."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    return q * math.sqrt(n)


def test_same_chain_as_devinterp():
    """Same weights, data, hyperparameters and noise seed: devinterp's own chain loop
    (``sample_single_chain`` stepping ``SGMCMC.sgld``) records the same losses at every draw,
    and λ̂ = nβ·(mean draw loss − L(w*)) (``devinterp.slt.llc.compute_llc``) is ours. Full batch,
    so the two data orders agree; the only difference left is float32 summation order."""
    from devinterp.optim import SGMCMC
    from devinterp.slt.sampler import sample_single_chain

    g = torch.Generator().manual_seed(0)
    n, d = 64, 5
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    model = nn.Linear(d, 1)
    cfg = SGLDConfig(epsilon=1e-3, nbeta=20.0, gamma=10.0, chains=1, steps=60, batch_size=n)

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": x[i], "y": y[i]}

    draws: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample_single_chain(
            model, Rows(), lambda m, b: (F.mse_loss(m(b["input_ids"]), b["y"]), {}),
            {name: None for name, _ in model.named_parameters()}, num_draws=cfg.steps,
            sampling_method=SGMCMC.sgld,
            sampling_method_kwargs={"lr": cfg.epsilon, "nbeta": cfg.nbeta,
                                    "localization": cfg.gamma},
            seed=stream_seed("llc-noise", 3, 0), batch_size=n,
            callbacks=[lambda loss, **_: draws.append(float(loss))])
    ours = estimate_llc(model, F.mse_loss, x, y, cfg, seed=3)
    with torch.no_grad():
        init = float(F.mse_loss(model(x), y))
    np.testing.assert_allclose(ours.trace[0] / cfg.nbeta + init, draws, rtol=1e-5)
    assert ours.llc == pytest.approx(cfg.nbeta * (np.mean(draws) - init), rel=1e-4)


@pytest.mark.parametrize("m", [2, 32, 500])
def test_default_nbeta_is_devinterps(m):
    """nβ left null is devinterp's ``default_nbeta`` of the batch, m / log m; a batch larger than
    the training set is the training set."""
    from devinterp.utils import default_nbeta

    assert SGLDConfig(batch_size=m).resolved_nbeta(10_000) == pytest.approx(default_nbeta(m))
    assert SGLDConfig(batch_size=m).resolved_nbeta(2) == pytest.approx(default_nbeta(2))


def test_regular_model_has_half_its_dimension():
    """Linear regression with d = 6 weights at its least-squares minimum: λ = d/2 (a regular
    model; Watanabe 2009, Lau et al. 2023 §3). The full-batch chain's stationary law is exact:
    per Hessian eigenvalue h, with a = nβh + γ, the discretized chain's variance is
    1 / (a(1 − εa/4)), so E[λ̂] = nβ/2 · Σ h / (a(1 − εa/4)); the settings below keep that
    within 5 % of d/2, and λ̂ must match it within 4 standard errors."""
    n, d = 64, 6
    x = _orthogonal_design(n, d, seed=0)
    g = torch.Generator().manual_seed(1)
    y = x @ torch.randn(d, 1, generator=g, dtype=torch.float64) \
        + 0.3 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T)
    cfg = SGLDConfig(epsilon=2e-3, nbeta=50.0, gamma=1.0, chains=8, steps=500, burnin=50,
                     batch_size=n)
    est = estimate_llc(model, F.mse_loss, x, y, cfg, seed=0)
    h = 2.0  # every eigenvalue of the Hessian of mean((y − Xw)²) with XᵀX/n = I
    a = cfg.nbeta * h + cfg.gamma
    expected = cfg.nbeta / 2 * d * h / (a * (1 - cfg.epsilon * a / 4))
    assert abs(expected - d / 2) < 0.05 * d / 2
    assert abs(est.llc - expected) < K_SE * _stderr(est)
    assert not est.unsettled and est.columns()["llc_chains"] == cfg.chains


class Product(nn.Module):
    """f(x) = a·b·x: two parameters, one effective direction."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * self.b * x


def _product_posterior_llc(cx: float, nbeta: float, gamma: float) -> float:
    """E[nβ·L] under ∝ exp(−nβ·cx·(ab − 1)² − γ/2·((a−1)² + (b−1)²)) by quadrature on a grid
    (spacing 0.002, far finer than the posterior's narrowest width, 1/√(nβ·cx·4) ≈ 0.035)."""
    grid = np.linspace(-2.0, 4.0, 3001)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    loss = cx * (a * b - 1) ** 2
    logp = -nbeta * loss - gamma / 2 * ((a - 1) ** 2 + (b - 1) ** 2)
    w = np.exp(logp - logp.max())
    return float(nbeta * (w * loss).sum() / w.sum())


def test_product_model_has_one_half_not_one():
    """f(x) = a·b·x fit to y = x, at w* = (1, 1): the minima {ab = 1} form a curve, so only its
    normal direction costs loss and λ = 1/2, not the d/2 = 1 of a regular two-parameter model
    (the product parameterization; Watanabe 2009 ch. 7, Lau et al. 2023 on degenerate minima).
    At finite nβ and γ the exact posterior expectation is a 2-D integral (quadrature); λ̂ must
    match it within 4 standard errors plus the discretization bias εa/4 of the steepest
    direction (a = nβ·2·cx·(a² + b²) + γ, bounded over the posterior's bulk by a² + b² ≤ 3)."""
    n = 64
    x = torch.randn(n, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cx = float((x ** 2).mean())
    cfg = SGLDConfig(epsilon=1e-4, nbeta=200.0, gamma=10.0, chains=8, steps=600, burnin=100,
                     batch_size=n)
    est = estimate_llc(Product(), F.mse_loss, x, x.clone(), cfg, seed=0)
    exact = _product_posterior_llc(cx, cfg.nbeta, cfg.gamma)
    assert abs(exact - 0.5) < 0.05
    discretization = cfg.epsilon * (cfg.nbeta * 2 * cx * 3 + cfg.gamma) / 4 * exact
    assert abs(est.llc - exact) < K_SE * _stderr(est) + discretization
    assert est.llc < 0.75  # nearer the singular 1/2 than the regular 1


def _mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def _permuted(model: nn.Sequential, perm: torch.Tensor) -> nn.Sequential:
    """The same network with its hidden units reordered by ``perm``."""
    out = _mlp(0)
    with torch.no_grad():
        out[0].weight.copy_(model[0].weight[perm])
        out[0].bias.copy_(model[0].bias[perm])
        out[2].weight.copy_(model[2].weight[:, perm])
        out[2].bias.copy_(model[2].bias)
    return out


def test_permuting_hidden_units_leaves_llc_unchanged():
    """λ̂ is a property of the function's posterior, which permuting hidden units maps onto
    itself. The permuted network draws the same noise numbers at permuted positions, so its
    chains are a different sample of the same law: the two λ̂ agree within 4 standard errors of
    their difference (over both runs' chains)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(128, 3, generator=g, dtype=torch.float64)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    model = _mlp(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):  # near a minimum, where λ̂ is meant to be read
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    perm = torch.randperm(8, generator=g)
    twin = _permuted(model, perm)
    torch.testing.assert_close(twin(x), model(x))
    cfg = SGLDConfig(epsilon=1e-4, nbeta=100.0, gamma=100.0, chains=8, steps=300, burnin=50,
                     batch_size=32)
    a = estimate_llc(model, F.mse_loss, x, y, cfg, seed=0)
    b = estimate_llc(twin, F.mse_loss, x, y, cfg, seed=0)
    assert a.llc != b.llc  # different noise positions: not the same chain replayed
    assert abs(a.llc - b.llc) < K_SE * math.hypot(_stderr(a), _stderr(b))


def test_estimate_is_deterministic_and_restores_the_model():
    """Same seed → the same λ̂; another seed → another sample; the weights and train mode the
    caller had are back afterwards."""
    x = _orthogonal_design(32, 3, seed=4)
    y = x.sum(dim=1, keepdim=True)
    model = nn.Linear(3, 1).double().train()
    before = [p.detach().clone() for p in model.parameters()]
    cfg = SGLDConfig(epsilon=1e-3, nbeta=10.0, chains=2, steps=30, batch_size=8)
    first = estimate_llc(model, F.mse_loss, x, y, cfg, seed=5)
    assert model.training
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(first.trace, estimate_llc(model, F.mse_loss, x, y, cfg,
                                                            seed=5).trace)
    assert not np.array_equal(first.trace, estimate_llc(model, F.mse_loss, x, y, cfg,
                                                        seed=6).trace)


def test_flags_chains_that_do_not_settle():
    """Away from a minimum without localization the chains keep descending (λ̂ < 0, drift);
    a step far past stability makes the loss overflow (no finished chain, λ̂ NaN). Both are
    flagged unsettled."""
    x = _orthogonal_design(64, 4, seed=6)
    y = x @ torch.full((4, 1), 3.0, dtype=torch.float64)
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()  # far from the least-squares weights (3, 3, 3, 3)
    descending = estimate_llc(model, F.mse_loss, x, y,
                              SGLDConfig(epsilon=1e-3, nbeta=20.0, gamma=0.0, chains=2,
                                         steps=100, batch_size=64), seed=0)
    assert descending.llc < 0 and descending.unsettled
    exploding = estimate_llc(model, F.mse_loss, x, y,
                             SGLDConfig(epsilon=1.0, nbeta=1e3, gamma=0.0, chains=2, steps=200,
                                        batch_size=64), seed=0)
    cols = exploding.columns()
    assert cols["llc_chains"] == 0 and math.isnan(cols["llc"]) and cols["llc_unsettled"] == 1.0


def test_a_pinn_loss_is_sampled():
    """The PINN's loss differentiates the model w.r.t. its inputs: the reference losses and the
    chains run with autograd on, and λ̂ comes out finite."""
    from phasezoo.tasks import ConvectionTask

    task = ConvectionTask(beta=1.0)
    g = torch.Generator().manual_seed(7)
    pts = torch.rand(96, 2, generator=g) * torch.tensor([2 * math.pi, 1.0])
    kind = torch.arange(96) % 3
    pts[kind == 1, 1] = 0.0
    y = torch.stack([kind.float(), torch.sin(pts[:, 0] - task.beta * pts[:, 1])], dim=1)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    est = estimate_llc(model, task, pts, y, SGLDConfig(chains=2, steps=20, batch_size=32),
                       seed=0)
    assert est.trace.shape == (2, 20) and np.isfinite(est.llc)


def test_measured_at_the_landscape_epoch_only(published):
    """The measure stage fills the llc columns at the landscape epoch for every live checkpoint
    (NaN at other epochs), with the configured chains and draws; rerunning the estimator on the
    checkpoint gives the stored λ̂; the published rows carry the same values and the phases
    table the seed mean."""
    import datasets
    import pandas as pd

    from phasezoo.checkpoints import read_population
    from phasezoo.data import cell_split
    from phasezoo.metrics import LLC_COLUMNS, llc_config

    cfg, cell, train_h5, zoo_dir = published
    s = cfg.zoo("tiny").metrics
    results = zoo_dir.parents[1] / "results" / "tiny"
    table = pd.read_parquet(results / cell.id / "metrics.parquet")
    pop = read_population(train_h5)
    last = int(pop.kept_epochs[-1])
    at = table[table["epoch"] == last]
    assert table.loc[table["epoch"] != last, list(LLC_COLUMNS)].isna().all().all()
    assert (at["llc_chains"] == s.llc_chains).all() and (at["llc_steps"] == s.llc_steps).all()
    i, k, _ = [c for c in pop.checkpoints() if c[2] == last][0]
    split = cell_split(cell.recipe, cfg.data_root)
    again = estimate_llc(pop.model(i, k), split.task, split.x_train, split.y_train,
                         llc_config(s), seed=s.hessian_seed)
    row = at[at["seed"] == int(pop.seeds[i])].iloc[0]
    # float32 model: the stage summed with its own thread count, this rerun with one thread, so
    # agreement is to float32 precision (ε = 1.2e-7), not bitwise
    assert row["llc"] == pytest.approx(again.llc, rel=1e-6)
    ds = datasets.load_dataset(str(zoo_dir), split="train").to_pandas()
    merged = ds.merge(table, on=["seed", "epoch"], suffixes=("", "_m"))
    np.testing.assert_array_equal(merged["llc"].to_numpy(), merged["llc_m"].to_numpy())
    phases = pd.read_parquet(results / "phases.parquet").set_index("cell")
    assert phases.loc[cell.id, "llc"] == pytest.approx(at["llc"].mean())


def test_llc_steps_zero_turns_it_off(trained):
    """``metrics.llc_steps: 0`` leaves every llc column NaN and the other metrics unchanged."""
    import dataclasses

    from phasezoo.data import cell_split
    from phasezoo.metrics import LLC_COLUMNS, cell_metrics

    cfg, cell, train_h5 = trained
    s = dataclasses.replace(cfg.zoo("tiny").metrics, topology=False, llc_steps=5, llc_chains=1)
    split = cell_split(cell.recipe, cfg.data_root)
    on = cell_metrics(train_h5, split, torch.device("cpu"), s, progress=False)
    off = cell_metrics(train_h5, split, torch.device("cpu"),
                       dataclasses.replace(s, llc_steps=0), progress=False)
    assert on["llc"].notna().sum() == len(cfg.zoo("tiny").seeds)
    assert off[list(LLC_COLUMNS)].isna().all().all()
    assert off["hessian_trace"].equals(on["hessian_trace"])
