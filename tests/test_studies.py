"""Downstream studies: weight matching, averaging and pruning checked against what they promise."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from phasezoo.models import create_model
from phasezoo.wsl.alphaprune import alpha_sparsities
from phasezoo.wsl.studies import (SPARSITIES, average, by_phase, can_align, magnitude_prune,
                                  weight_match)


def _model(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    kw = {"depth": 2} if name == "mlp" else {}
    return create_model(name, width=6, input_shape=(1, 8, 8), num_classes=4, **kw).eval()


def _permuted(model: nn.Module, seed: int) -> nn.Module:
    """The same function with every hidden layer's units shuffled."""
    out = copy.deepcopy(model)
    layers = [m for m in out.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a, b in zip(layers[:-1], layers[1:], strict=True):
            perm = torch.randperm(len(a.weight), generator=g)
            a.weight.copy_(a.weight[perm])
            a.bias.copy_(a.bias[perm])
            b.weight.copy_(b.weight[:, perm])
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_weight_matching_undoes_a_permutation(name):
    a = _model(name, 0)
    b = _permuted(a, 1)
    x = torch.randn(7, 1, 8, 8)
    assert torch.allclose(a(x), b(x), atol=1e-5)
    assert not torch.allclose(list(a.parameters())[0], list(b.parameters())[0])
    matched = weight_match(a, b)
    for p, q in zip(a.parameters(), matched.parameters(), strict=True):
        assert torch.equal(p, q)  # the permutation is recovered exactly
    assert torch.allclose(average([a, matched])(x), a(x), atol=1e-5)
    assert not torch.allclose(average([a, b])(x), a(x), atol=1e-3)  # the naive average is not


def test_weight_matching_keeps_the_function_of_another_seed():
    a, b = _model("mlp", 0), _model("mlp", 1)
    x = torch.randn(7, 1, 8, 8)
    assert torch.allclose(weight_match(a, b)(x), b(x), atol=1e-5)


def test_resnets_are_aligned_and_unknown_modules_are_not():
    assert all(can_align(_model(name, 0)) for name in ("mlp", "cnn", "resnet18"))
    a, b = _model("resnet18", 0), _model("resnet18", 1)
    x = torch.randn(7, 1, 8, 8)
    assert torch.allclose(weight_match(a, b)(x), b(x), atol=1e-5)
    lstm = nn.Sequential(nn.LSTM(4, 4))
    assert not can_align(lstm)
    with pytest.raises(ValueError, match="no rule for module '0' of type LSTM"):
        weight_match(lstm, lstm)


@pytest.mark.parametrize("sparsity", [0.0, *SPARSITIES])
def test_magnitude_pruning_zeroes_the_smallest_weights_globally(sparsity):
    model = _model("mlp", 0)
    pruned = magnitude_prune(model, sparsity)
    linear = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    assert torch.equal(model[linear[-1]].weight, pruned[linear[-1]].weight)  # the head is kept
    before = torch.cat([model[i].weight.reshape(-1) for i in linear[:-1]])
    after = torch.cat([pruned[i].weight.reshape(-1) for i in linear[:-1]])
    k = round(sparsity * len(before))
    assert int((after == 0).sum()) == k
    if k:
        assert before.abs()[after == 0].max() <= before.abs()[after != 0].min()
    kept = after != 0
    assert torch.equal(after[kept], before[kept])
    for m, p in zip(model, pruned, strict=True):  # biases untouched
        if isinstance(m, nn.Linear):
            assert torch.equal(m.bias, p.bias)


def test_by_phase_summary_and_kruskal_by_hand():
    from scipy.stats import kruskal

    cells = pd.DataFrame({
        "cell": list("abcdef"), "phase": ["I", "I", "I", "IV-B", "IV-B", "IV-B"],
        "member_accuracy": [0.5] * 6,
        "naive_average_accuracy": [0.1, 0.2, 0.15, 0.45, 0.5, 0.48],
        "aligned_average_accuracy": [0.3, 0.35, 0.32, 0.5, 0.52, 0.49],
        **{f"pruned_{s:g}_accuracy": [0.4] * 6 for s in SPARSITIES}})
    out = by_phase(cells)
    gains_i = np.array([0.1, 0.2, 0.15]) - 0.5
    assert out["per_phase"]["I"]["naive_gain"]["mean"] == pytest.approx(gains_i.mean())
    assert out["per_phase"]["I"]["naive_gain"]["std"] == pytest.approx(gains_i.std(ddof=1))
    expected = kruskal(gains_i, np.array([0.45, 0.5, 0.48]) - 0.5).pvalue
    assert out["kruskal_p"]["naive_gain"] == pytest.approx(expected)
    assert np.isnan(out["kruskal_p"]["pruned_0.5_drop"])  # identical everywhere: no test
    assert not any(m.startswith("alpha_vs") for m in out["kruskal_p"])  # arms not measured
    arms = cells.assign(**{f"{a}_{s:g}_accuracy": v for s in SPARSITIES for a, v in
                           (("alpha", [0.45, 0.4, 0.4, 0.3, 0.35, 0.3]), ("uniform", [0.4] * 6))})
    both = by_phase(arms)
    assert both["per_phase"]["I"]["alpha_vs_uniform_0.8"]["mean"] == pytest.approx(
        np.mean([0.05, 0, 0]))
    assert both["per_phase"]["IV-B"]["alpha_vs_global_0.8"]["mean"] == pytest.approx(
        np.mean([-0.1, -0.05, -0.1]))
    assert both["kruskal_p"]["alpha_vs_uniform_0.5"] == pytest.approx(
        kruskal([0.05, 0, 0], [-0.1, -0.05, -0.1]).pvalue)
    # an error score (PINN relative L2): averaging that lowers the error is a positive gain
    flipped = by_phase(cells, sign=-1)
    assert flipped["per_phase"]["I"]["naive_gain"]["mean"] == pytest.approx(-gains_i.mean())
    assert flipped["per_phase"]["I"]["pruned_0.5_drop"]["mean"] == pytest.approx(-0.1)


def _study_result() -> dict:
    cells = pd.DataFrame({"cell": list("ab"), "phase": ["I", "IV-B"], "member_accuracy": [0.5] * 2,
                          "naive_average_accuracy": [0.1, 0.4],
                          "aligned_average_accuracy": [0.3, 0.5],
                          **{f"pruned_{s:g}_accuracy": [0.4, 0.3] for s in SPARSITIES}})
    return {"zoo": ["z"], "epoch": 3, "score": "top-1 accuracy", "transfer_dataset": None,
            "sparsities": list(SPARSITIES), "cells": cells.to_dict(orient="records"),
            **by_phase(cells)}


def test_a_killed_studies_report_leaves_no_complete_looking_json(tmp_path, monkeypatch):
    import json

    from phasezoo.wsl import studies_report as studies

    md = studies.write_report(_study_result(), tmp_path)
    assert md == tmp_path / "studies.md"
    assert json.loads((tmp_path / "studies.json").read_text())["epoch"] == 3

    def killed(*_args):
        raise KeyboardInterrupt  # the job is stopped while drawing

    monkeypatch.setattr(studies, "plot", killed)
    with pytest.raises(KeyboardInterrupt):
        studies.write_report(_study_result(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["studies.md", "studies.png"]


def test_an_unknown_transfer_dataset_fails_before_any_cell_is_studied(published, monkeypatch):
    from phasezoo.wsl import studies
    from phasezoo_testkit import DATA_ROOT

    studied = []
    monkeypatch.setattr(studies, "cell_study", lambda *a, **k: studied.append(1) or {})
    with pytest.raises(ValueError, match="unknown dataset 'no-such-set'"):
        studies.run_studies(str(published[3]), str(DATA_ROOT), progress=False,
                            transfer_dataset="no-such-set")
    assert studied == []


def test_studies_fine_tune_each_model_with_its_own_seed(published, tmp_path):
    """Seed 0 diverged at the last epoch: seed 1, the cell's only model, is fine-tuned (and its
    from-scratch twin trained) with seed 1, exactly as on its own."""
    from phasezoo.weights import build_model
    from phasezoo.wsl.finetune import FinetuneSettings, finetune, transfer_split
    from phasezoo.wsl.studies import _fresh, run_studies
    from phasezoo.wsl.table import load_zoo
    from phasezoo_testkit import DATA_ROOT
    from phasezoo_testkit import edited_zoo_copy

    def seed_0_diverges_last(f):
        last = f["epoch"][:] == f["epoch"][:].max()
        f["diverged"][:] = f["diverged"][:] | (last & (f["seed"][:] == 0))

    zoo = edited_zoo_copy(published[3], tmp_path / "zoo", seed_0_diverges_last)
    cfg = FinetuneSettings(epochs=1)
    result = run_studies(str(zoo), str(DATA_ROOT), progress=False,
                         transfer_dataset="sklearn-digits", finetune=cfg)
    (row,) = result["cells"]
    table = load_zoo(str(zoo))
    (i,) = np.flatnonzero(table.meta["epoch"] == table.meta["epoch"].max())
    assert table.meta["seed"][i] == 1
    model = build_model(table.layouts[i], torch.as_tensor(table.weights[i]))
    second = transfer_split("sklearn-digits", str(DATA_ROOT), (1, 28, 28))
    assert row["finetune_accuracy"] == finetune(model, second, cfg, seed=1)
    assert row["scratch_accuracy"] == finetune(_fresh(table.layouts[i], 1), second, cfg, seed=1)
    assert row["finetune_accuracy"] != finetune(model, second, cfg, seed=0)  # the seed matters
    # TempBalance: a 1-hidden-layer MLP has no layer to tune (first and last excluded), so its
    # runs would be the uniform-rate runs: it is not run, and the report says why
    from phasezoo.wsl.finetune import TB_FRACTIONS, train_subset

    for f in TB_FRACTIONS:
        part = train_subset(second, f)
        assert len(part.x_train) == max(1, round(f * len(second.x_train)))
        assert f"tb_gain_{f:g}" not in row and f"uniform_ft_{f:g}_accuracy" not in row
    assert result["not_applicable"]["TempBalance"].startswith("0 eligible layers")


def _argsort_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """The reference: a stable argsort of all magnitudes but the output layer's, the k first
    zeroed."""
    out = copy.deepcopy(model)
    weights = [m.weight for m in out.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]
    flat = torch.cat([w.detach().reshape(-1) for w in weights])
    k = int(round(sparsity * len(flat)))
    mask = torch.zeros(len(flat), dtype=torch.bool)
    mask[torch.argsort(flat.abs(), stable=True)[:k]] = True
    with torch.no_grad():
        for w, m in zip(weights, mask.split([w.numel() for w in weights]), strict=True):
            w[m.reshape(w.shape)] = 0.0
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18"])
def test_pruning_in_place_step_by_step_equals_a_stable_sort_of_the_original(name):
    from phasezoo.wsl.studies import pruned_in_place

    model = _model(name, 0)
    with torch.no_grad():  # magnitudes on a coarse grid: every cut-off splits a run of ties
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                step = float(m.weight.abs().max()) / 4
                m.weight.copy_((m.weight / step).round() * step)
    steps = pruned_in_place(copy.deepcopy(model), [0.95, 0.5, 0.8, 0.9])
    for sparsity, pruned in steps:  # ascending, each pruned from the last step's zeros
        expected = _argsort_prune(model, sparsity)
        for p, q in zip(pruned.state_dict().values(), expected.state_dict().values(), strict=True):
            assert torch.equal(p, q), sparsity


def test_running_mean_equals_the_stacked_mean_and_keeps_integer_buffers():
    from phasezoo.wsl.studies import RunningMean

    models = [_model("resnet18", s).train() for s in range(3)]
    x = torch.randn(4, 1, 8, 8)
    for m in models:
        m(x)  # BatchNorm statistics and num_batches_tracked move
    mean = RunningMean()
    for m in models:
        mean.add(m)
    out = mean.load_into(_model("resnet18", 9))
    for k, v in out.state_dict().items():
        stacked = torch.stack([m.state_dict()[k].float() for m in models]).mean(0).to(v.dtype)
        assert v.dtype == models[0].state_dict()[k].dtype
        torch.testing.assert_close(v, stacked, rtol=1e-6, atol=1e-7)


def test_cell_study_holds_one_model_at_a_time_and_matches_the_whole_cell_numbers():
    import weakref

    from phasezoo.wsl.studies import LazyModels, cell_study

    def values(m: nn.Module) -> int:
        return sum(t.numel() for t in m.state_dict().values() if not t.is_meta)

    alive: list[weakref.ref] = []
    peak = [0]

    def build(i: int) -> nn.Module:
        model = _model("resnet18", i)
        peak[0] = max(peak[0], values(model) + sum(values(r()) for r in alive if r()))
        alive.append(weakref.ref(model))
        return model

    x, y = torch.randn(20, 1, 8, 8), torch.randint(0, 4, (20,))
    row = cell_study(LazyModels(build, 3), x, y)
    assert peak[0] == values(_model("resnet18", 0))  # the earlier seeds' values were freed
    models = [_model("resnet18", i) for i in range(3)]  # the reference: every model at once
    from phasezoo.evaluation import evaluate

    def score(m: nn.Module) -> float:
        return evaluate(m, x, y, 1000, None)[1]

    assert row["member_accuracy"] == pytest.approx(np.mean([score(m) for m in models]))
    assert row["naive_average_accuracy"] == pytest.approx(score(average(models)))
    matched = [models[0], *(weight_match(models[0], m) for m in models[1:])]
    assert row["aligned_average_accuracy"] == pytest.approx(score(average(matched)))
    for s in SPARSITIES:
        assert row[f"pruned_{s:g}_accuracy"] == pytest.approx(
            np.mean([score(_argsort_prune(m, s)) for m in models]))
        assert row[f"uniform_{s:g}_accuracy"] == pytest.approx(
            np.mean([score(_layer_prune(m, lambda _a, n: np.full(len(n), s))) for m in models]))
        assert row[f"alpha_{s:g}_accuracy"] == pytest.approx(np.mean([score(_layer_prune(
            m, lambda a, n: alpha_sparsities(a, n, s))) for m in models]))


def _layer_prune(model: nn.Module, shares) -> nn.Module:
    """The reference per-layer pruning of a copy: each layer's weights sorted on their own (a
    stable argsort), its first round(share·numel) zeroed; ``shares(alphas, sizes)`` gives the
    shares from the layers' AlphaPruning α (the unpruned weights') and weight counts."""
    from phasezoo.wsl.alphaprune import layer_alpha

    out = copy.deepcopy(model)
    layers = [m for m in out.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]
    alphas = np.array([layer_alpha(m.weight) for m in layers])
    for m, share in zip(layers, shares(alphas, np.array([m.weight.numel() for m in layers])),
                        strict=True):
        flat = m.weight.detach().reshape(-1)
        k = int(round(share * len(flat)))
        with torch.no_grad():
            m.weight.view(-1)[torch.argsort(flat.abs(), stable=True)[:k]] = 0.0
    return out
