"""The per-checkpoint metrics table agrees with the functions it is built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from torch.nn import functional as F

from phasezoo import htsr
from phasezoo.checkpoints import read_population
from phasezoo.data import cell_split
from phasezoo.landscape.hessian import hessian_summary, sample_batches


def test_metrics_rows_match_direct_computation(published):
    cfg, cell, train_h5, zoo_dir = published
    table = pd.read_parquet(zoo_dir.parents[1] / "results" / "tiny" / cell.id / "metrics.parquet")
    pop = read_population(train_h5)
    i, k, epoch = list(pop.checkpoints())[-1]
    row = table[(table["seed"] == int(pop.seeds[i])) & (table["epoch"] == epoch)].iloc[0]
    model = pop.model(i, k)
    layers = htsr.analyze(model, farms=False)
    alphas = layers["alpha"].where(layers["alpha"] != -1)
    expected = float(np.nanmean(alphas)) if alphas.notna().any() else float("nan")
    assert row["alpha_mean"] == pytest.approx(expected, rel=1e-12, nan_ok=True)  # width 4: all skipped
    s = cfg.zoo("tiny").raw["metrics"]
    split = cell_split(cell.hparams, cfg.data_root)
    batches = sample_batches(split.x_train, split.y_train, s["hessian_batches"],
                             s["hessian_batch_size"], s["hessian_seed"])
    direct = hessian_summary(model, F.cross_entropy, batches, tol=s["hessian_tol"],
                             trace_tol=s["hessian_trace_tol"], max_iter=s["hessian_max_iter"],
                             seed=s["hessian_seed"])
    assert row["hessian_top_eigenvalue"] == pytest.approx(direct.top_eigenvalue, rel=1e-5)
    assert row["hessian_trace"] == pytest.approx(direct.trace, rel=1e-5)


def test_htsr_summary_metric_on_an_analysable_model():
    import torch

    from phasezoo.metrics import htsr_summary
    from phasezoo.models import create_model

    torch.manual_seed(0)
    model = create_model("mlp", width=32, input_shape=(1, 28, 28), num_classes=10)
    out = htsr_summary(model, None, None)
    layers = htsr.analyze(model, farms=False)
    assert len(layers) == 3 and (layers["alpha"] > 1).all()
    assert out["alpha_mean"] == pytest.approx(layers["alpha"].mean(), rel=1e-12)
    assert out["stable_rank_mean"] == pytest.approx(layers["stable_rank"].mean(), rel=1e-12)
