"""HTSR metrics: known power laws, FARMS sampling, and agreement with WeightWatcher 0.7.7."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from phasezoo import htsr
from phasezoo.htsr import analysis, farms, fit
from phasezoo.models import create_model

pytestmark = pytest.mark.filterwarnings(  # inside WeightWatcher 0.7.7, with pandas 3
    "ignore:Passing a dict to DataFrame.from_records is deprecated")

REL = 1e-6  # agreement with WeightWatcher, relative
WW_COLUMNS = {  # ours → WeightWatcher's
    "alpha": "alpha", "xmin": "xmin", "ks_distance": "D", "sigma": "sigma",
    "num_pl_spikes": "num_pl_spikes", "lambda_max": "lambda_max",
    "alpha_weighted": "alpha_weighted", "stable_rank": "stable_rank",
    "log_frobenius_norm": "log_norm", "log_spectral_norm": "log_spectral_norm",
    "log_alpha_norm": "log_alpha_norm", "num_eigenvalues": "num_evals",
}


@pytest.fixture(scope="module")
def ww():
    """weightwatcher, imported here only: its import silences all warnings (restored)."""
    saved = warnings.filters[:]
    import weightwatcher

    warnings.filters[:] = saved
    return weightwatcher


def ww_details(ww, model: nn.Module) -> pd.DataFrame:
    with contextlib.redirect_stdout(io.StringIO()):  # its "SMALL N PL FIT" prints
        return ww.WeightWatcher(model=model).analyze(plot=False, randomize=False, mp_fit=False,
                                                     vectors=False, detX=False, savefig=False)


def seeded(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kwargs)


def heavy_tailed(model: nn.Module, seed: int = 0, df: float = 3.0) -> nn.Module:
    """Student-t weights: power-law ESD tails, so the x_min search has something to find."""
    g = np.random.default_rng(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                w = g.standard_t(df, size=tuple(m.weight.shape)) / np.sqrt(m.weight[0].numel())
                m.weight.copy_(torch.from_numpy(w))
    return model


def quirks() -> nn.Module:
    """Layers where WW's conv bookkeeping matters (never run forward).

    (1, 2, 5×5): out + in < kh + kw, WW's "channels first" branch, 25 1×1 slices.
    (16, 4, 1×2) and (4, 2, 1×2): out < in with an even kernel size, so WW's per-slice N/M swap
    leaves M = in: analysed with 8 (resp. 4) eigenvalues although min(out, in)·rf < 8 for the
    second (small-N fallback fit). Linear(40, 5): M = 5 < 8, skipped.
    """
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 2, 5), nn.Conv2d(2, 16, 3), nn.Conv2d(16, 4, (1, 2)),
                         nn.Conv2d(4, 2, (1, 2)), nn.Flatten(), nn.Linear(40, 5))


def wide() -> nn.Module:
    """More than 1024 eigenvalues per ESD: the branch-and-bound x_min search."""
    torch.manual_seed(4)
    return heavy_tailed(nn.Sequential(nn.Conv2d(128, 128, 3), nn.Flatten(), nn.Linear(1200, 1100)))


MODELS = {
    "mlp": lambda: seeded("mlp", width=64, input_shape=(1, 28, 28), num_classes=10),
    "mlp-heavy": lambda: heavy_tailed(seeded("mlp", width=64, input_shape=(1, 28, 28),
                                             num_classes=10)),
    "cnn": lambda: seeded("cnn", width=16, input_shape=(3, 32, 32), num_classes=10),
    "resnet18": lambda: seeded("resnet18", width=4, input_shape=(3, 32, 32), num_classes=10),
    "quirks": quirks,
    "wide": wide,
}


# ----------------------------------------------------------------------------------------------
# known power laws


@pytest.mark.parametrize("alpha", [2.5, 3.5])
def test_pareto_tail_alpha(alpha):
    """10 000 Pareto draws with density ∝ x^−α: fitted α within ±0.1 (σ ≈ 0.02–0.03)."""
    x = np.random.default_rng(0).pareto(alpha - 1, 10_000) + 1  # numpy's Lomax + 1 = Pareto I
    fit = htsr.fit_power_law(x)
    assert fit.ok and abs(fit.alpha - alpha) < 0.1


def test_xmin_search_finds_planted_tail():
    """A uniform bulk on [0.05, 1) below a Pareto tail (α = 2.5) from x = 2: x_min lands at 2."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(0.05, 1.0, 4000), 2 * (rng.pareto(1.5, 1500) + 1)])
    fit = htsr.fit_power_law(x)
    assert 2.0 <= fit.xmin < 2.5  # the smallest tail value is ≈ 2.0; the bulk ends below 1
    assert abs(fit.alpha - 2.5) < 0.15


def test_pruned_xmin_search_equals_full_search():
    """Branch-and-bound (N > 1024) picks the same candidate with the same D as the full search."""
    rng = np.random.default_rng(2)
    esds = [np.sort(rng.pareto(1.5, 3000) + 1),
            np.sort(np.concatenate([rng.uniform(0.1, 1, 2000), 2 * (rng.pareto(2.0, 800) + 1)])),
            np.sort(htsr.squared_singular_values(torch.randn(9, 400, 150)).numpy().ravel())]
    for x in esds:
        logx, alpha, compute, _, _ = fit._candidates(x[None])
        a1 = fit._exponents(alpha, compute)
        full = np.where(compute, fit._ks_full(logx, a1), 1.0)[0]
        pruned = fit._ks_pruned(logx[0], a1[0], compute[0])
        i = int(np.argmin(full))
        assert int(np.argmin(pruned)) == i
        assert pruned[i] == pytest.approx(full[i], rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 12, 19, 20, 60])
def test_fit_equals_wwfit(ww, n):
    """Small-N (bias-corrected, fallback) and standard fits, with ties, equal WWFit's."""
    from weightwatcher.WW_powerlaw import WWFit

    rng = np.random.default_rng(n)
    x = np.round(rng.pareto(1.5, n) + 1, 1)  # rounding makes ties
    fit = htsr.fit_power_law(x)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ref = WWFit(x)
    except ValueError:  # WWFit's argmin over no candidate x_min (one eigenvalue): it fails
        assert n == 1 and not fit.ok and fit.alpha == -1
        return
    assert fit.ok
    assert fit.alpha == pytest.approx(ref.alpha, rel=1e-9)
    assert fit.xmin == ref.xmin
    assert fit.ks_distance == pytest.approx(ref.D, rel=1e-9, abs=1e-15)
    assert fit.sigma == pytest.approx(ref.sigma, rel=1e-9)


# ----------------------------------------------------------------------------------------------
# FARMS


def gaussian_layers(seed: int, rows: int = 200, cols=(200, 800, 2000)) -> list[nn.Module]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in cols:
        lin = nn.Linear(c, rows, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(rows, c, generator=g))
        out.append(nn.Sequential(lin))
    return out


def test_farms_windows_follow_reference_grid():
    """128 × 784: 9 × 9 windows of 100 × 100, rows from 0, 3, …, 24, columns from 0, 85, …, 680."""
    w = torch.arange(128 * 784, dtype=torch.float32).reshape(128, 784)
    win = farms.farms_linear_windows(w, 100, 1.0, 9)
    assert win.shape == (81, 100, 100)
    assert torch.equal(win[10], w[3:103, 85:185])
    assert torch.equal(win[-1], w[24:124, 680:780])
    small = farms.farms_linear_windows(w[:10], 100, 1.0, 9)  # fewer rows than the window: all
    assert small.shape == (9, 10, 100) and torch.equal(small[1], w[:10, 85:185])
    odd = farms.farms_linear_windows(w[:80], 100, 1.0, 9)  # start −20 counts from the end
    assert odd.shape == (9, 20, 100) and torch.equal(odd[0], w[60:80, 0:100])


def _farms_reference_windows(matrix: torch.Tensor, r: int = 100, q: float = 1.0,
                             ops: int = 9) -> list[torch.Tensor]:
    """FARMS's reference ``fixed_sampling`` for a Linear weight, transliterated (its Python
    slicing included; HUST-AI-HYZ/FARMS, Image_Classification)."""
    rows, cols = matrix.shape
    c = int(r * q)
    row_step, col_step = max(1, (rows - r) // (ops - 1)), max(1, (cols - c) // (ops - 1))
    n_rows = min(ops, max(1, (rows - r) // row_step + 1))
    n_cols = min(ops, max(1, (cols - c) // col_step + 1))
    windows = []
    for i in range(n_rows):
        for j in range(n_cols):
            r0, c0 = min(i * row_step, rows - r), min(j * col_step, cols - c)
            windows.append(matrix[r0:r0 + r, c0:c0 + c])
    return windows


def _farms_reference_alpha(matrix: torch.Tensor, r: int = 100, q: float = 1.0,
                           ops: int = 9) -> float:
    """FARMS's reference code for a Linear weight, transliterated: ``fixed_sampling``, then
    ``analysis_esd`` with ``fix_fingers='median'``, ``xmin_pos=2``, ``filter_zeros=False``."""
    eigs = [torch.square(torch.linalg.svdvals(w)) for w in _farms_reference_windows(matrix, r, q,
                                                                                     ops)]
    e = torch.sort(torch.cat(eigs).double()).values
    i = int(len(e) / 2)
    n = float(len(e) - i)
    return float(1 + n / (torch.sum(torch.log(e[i:])) - n * torch.log(e[i])))


@pytest.mark.parametrize("shape", [(32, 784), (8, 784), (80, 784), (128, 784), (784, 32),
                                   (300, 300)])
def test_farms_alpha_equals_its_reference_code_for_every_linear_shape(shape):
    g = torch.Generator().manual_seed(sum(shape))
    lin = nn.Linear(shape[1], shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(*shape, generator=g))
    ours = htsr.analyze(nn.Sequential(lin))["farms_alpha"][0]
    assert ours == pytest.approx(_farms_reference_alpha(lin.weight.detach()), rel=1e-5)


def _gaussian_linear(rows: int, cols: int) -> nn.Linear:
    g = torch.Generator().manual_seed(rows * 1000 + cols)
    lin = nn.Linear(cols, rows, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(rows, cols, generator=g))
    return lin


@pytest.mark.parametrize("shape", [(51, 784), (64, 300), (80, 784), (92, 784), (93, 784),
                                   (99, 784), (784, 95), (60, 70)])
def test_farms_window_evals_follow_the_reference_slicing(shape):
    """On a dimension of 51–99 the reference's windows hold its last 1–49 entries; the column
    counts the eigenvalues of the reference's own windows, and α is still the reference's."""
    lin = _gaussian_linear(*shape)
    df = htsr.analyze(nn.Sequential(lin))
    windows = _farms_reference_windows(lin.weight.detach())
    assert {min(w.shape) for w in windows} == {df["farms_window_evals"][0]}
    assert df["farms_alpha"][0] == pytest.approx(_farms_reference_alpha(lin.weight.detach()),
                                                 rel=1e-5)


def test_farms_mean_leaves_out_layers_below_the_plain_alpha_minimum():
    """Windows of 100, 8 (kept: the minimum) and 4 eigenvalues (left out of the mean only)."""
    model = nn.Sequential(_gaussian_linear(128, 784), nn.ReLU(), _gaussian_linear(92, 128),
                          nn.ReLU(), _gaussian_linear(96, 92))
    df = htsr.analyze(model)
    assert list(df["farms_window_evals"]) == [100, 8, 4]
    assert htsr.FARMS_MIN_WINDOW_EVALS == htsr.MIN_EVALS == 8
    ref = [_farms_reference_alpha(m.weight.detach()) for m in model if isinstance(m, nn.Linear)]
    assert list(df["farms_alpha"]) == pytest.approx(ref, rel=1e-5)  # every layer keeps its α
    assert htsr.summarize(df)["farms_alpha_mean"] == pytest.approx(np.mean(ref[:2]), rel=1e-5)
    assert abs(np.mean(ref) - np.mean(ref[:2])) > 0.1  # the left-out layer mattered
    assert np.isnan(htsr.analyze(model, farms=False)["farms_window_evals"]).all()


def test_farms_alpha_independent_of_aspect_ratio():
    """FARMS's claim, with FARMS's own (median) fit on both ESDs: Gaussian 200 × {200, 800, 2000}.

    The full matrices' α changes with the aspect ratio (MP law); the pooled 100 × 100 windows'
    does not. (With the KS fit for FARMS it does not hold: see the tests below.)
    """
    for seed in range(2):
        models = gaussian_layers(seed)
        farms_alpha = [df["farms_alpha"][0] for df in htsr.analyze_many(models)]
        plain = [htsr.fit_power_law(htsr.squared_singular_values(m[0].weight.detach()[None])
                                    .numpy(), method="median").alpha for m in models]
        assert np.ptp(farms_alpha) < 0.05 * np.ptp(plain)


@pytest.mark.parametrize("seed", range(3))
def test_default_farms_alpha_varies_less_than_alpha(seed):
    """The claim with the defaults as the zoo computes them (plain α: WeightWatcher's KS fit;
    FARMS α: FARMS's median fit): across aspect ratios FARMS α moves less than plain α."""
    dfs = htsr.analyze_many(gaussian_layers(seed))
    plain = [df["alpha"][0] for df in dfs]
    farms_alpha = [df["farms_alpha"][0] for df in dfs]
    assert dfs[0].attrs["farms"]["fit"] == "farms-median"
    assert np.ptp(farms_alpha) < 0.1 * np.ptp(plain)


def test_ks_fit_locks_onto_the_edge_of_a_bounded_esd():
    """Why the median fit is FARMS's default here: with the KS search, the pooled FARMS ESD of
    Gaussian noise (a bounded, Marchenko–Pastur-like spectrum) gets a huge α from its hard edge
    (≈30–45) instead of the bulk's ≈2, and varies more than plain α does."""
    dfs = htsr.analyze_many(gaussian_layers(0), farms_fit="ks")
    farms_alpha = [df["farms_alpha"][0] for df in dfs]
    assert dfs[0].attrs["farms"]["fit"] == "weightwatcher-ks"
    assert min(farms_alpha) > 10


def test_farms_conv_blocks_average():
    """Conv: per-kernel-position slices cut into square blocks, α averaged over the blocks."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 24, 3)  # slices 24 × 8: 3 blocks of 8 × 8, 9 kernel positions each
    slices = analysis._conv_slices(conv.weight.detach())
    blocks = farms.farms_conv_blocks(slices, 1.0)
    assert blocks.shape == (3, 9, 8, 8)
    assert torch.equal(blocks[1, 4], conv.weight.detach()[8:16, :, 1, 1])
    fits = [htsr.fit_power_law(0.5 * htsr.squared_singular_values(b).numpy()).alpha
            for b in blocks]
    df = htsr.analyze(nn.Sequential(conv), farms_fit="ks")
    assert df["farms_alpha"][0] == pytest.approx(np.mean(fits), rel=1e-9)
    assert df.attrs["farms"]["fit"] == "weightwatcher-ks"
    assert df["farms_window_evals"][0] == 9 * 8  # a block: 9 slices of 8 × 8, one fit


# ----------------------------------------------------------------------------------------------
# WeightWatcher agreement


@pytest.mark.parametrize("name", list(MODELS))
def test_agrees_with_weightwatcher(ww, name):
    """Same layers analysed (and skipped), every metric within 1e-6 relative."""
    model = MODELS[name]()
    df = htsr.analyze(model, farms=False)
    ref = ww_details(ww, model).set_index("longname")
    assert list(df["layer"]) == list(ref.index)
    analysed = {n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    assert set(df["layer"]) | {s["layer"] for s in df.attrs["skipped"]} == analysed
    assert not set(df["layer"]) & {s["layer"] for s in df.attrs["skipped"]}
    for ours, theirs in WW_COLUMNS.items():
        np.testing.assert_allclose(df[ours].to_numpy(float), ref[theirs].to_numpy(float),
                                   rtol=REL, atol=0, err_msg=f"{name}: {ours}")


def test_quirks_skip_list():
    df = htsr.analyze(quirks(), farms=False)
    assert [s["layer"] for s in df.attrs["skipped"]] == ["5"]
    assert "M·rf = 5 < min_evals = 8" in df.attrs["skipped"][0]["reason"]
    assert list(df["num_eigenvalues"]) == [25, 18, 8, 4]


# ----------------------------------------------------------------------------------------------
# API properties


def test_analyze_many_equals_analyze():
    models = [seeded("mlp", seed, width=32, input_shape=(1, 28, 28), num_classes=10)
              for seed in range(3)]
    many = htsr.analyze_many(models)
    for m, df in zip(models, many, strict=True):
        one = htsr.analyze(m)
        pd.testing.assert_frame_equal(df, one, check_exact=False, rtol=1e-10)
        assert df.attrs == one.attrs


def test_hidden_unit_permutation_leaves_alpha_unchanged():
    model = heavy_tailed(seeded("mlp", width=64, input_shape=(1, 28, 28), num_classes=10))
    permuted = seeded("mlp", width=64, input_shape=(1, 28, 28), num_classes=10)
    permuted.load_state_dict(model.state_dict())
    lin = [m for m in permuted if isinstance(m, nn.Linear)]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for a, b in zip(lin[:-1], lin[1:]):
            p = torch.randperm(a.out_features, generator=g)
            a.weight.copy_(a.weight[p])
            a.bias.copy_(a.bias[p])
            b.weight.copy_(b.weight[:, p])
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(permuted(x), model(x))  # the same function
    # farms=False: FARMS windows are contiguous blocks of units, so they are not invariant
    before, after = htsr.analyze(model, farms=False), htsr.analyze(permuted, farms=False)
    for col in ("alpha", "xmin", "ks_distance"):
        np.testing.assert_allclose(after[col], before[col], rtol=1e-9)


def test_summarize():
    df = htsr.analyze(seeded("cnn", width=8, input_shape=(3, 32, 32), num_classes=10))
    s = htsr.summarize(df)
    assert s["num_layers"] == len(df) == 3
    assert s["alpha_mean"] == pytest.approx(df["alpha"].mean())
    assert set(s) == {"alpha_mean", "alpha_weighted_mean", "farms_alpha_mean", "stable_rank_mean",
                      "log_spectral_norm_mean", "log_frobenius_norm_mean", "num_layers"}
    assert np.isnan(htsr.summarize(df.iloc[:0])["alpha_mean"])
