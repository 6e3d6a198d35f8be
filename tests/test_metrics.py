"""The per-checkpoint metrics table agrees with the functions it is built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from torch.nn import functional as F

from phasezoo import htsr
from phasezoo.checkpoints import read_population
from phasezoo.config import load_config
from phasezoo.data import cell_split
from phasezoo.landscape.hessian import (
    hessian_summary,
    hessian_top_eigenvalue,
    sample_batches,
)


def test_metrics_rows_match_direct_computation(published):
    cfg, cell, train_h5, zoo_dir = published
    table = pd.read_parquet(zoo_dir.parents[1] / "results" / "tiny" / cell.id / "metrics.parquet")
    pop = read_population(train_h5)
    i, k, epoch = list(pop.checkpoints())[-1]
    row = table[(table["seed"] == int(pop.seeds[i])) & (table["epoch"] == epoch)].iloc[0]
    model = pop.model(i, k)
    layers = htsr.analyze(model, farms=False)
    assert len(layers) == 2 and (layers["alpha"] > 0).all()  # width 16: both layers fitted
    assert row["alpha_mean"] == pytest.approx(float(layers["alpha"].mean()), rel=1e-12)
    s = cfg.zoo("tiny").metrics
    split = cell_split(cell.recipe, cfg.data_root)
    batches = sample_batches(split.x_train, split.y_train, s.hessian_batches,
                             s.hessian_batch_size, s.hessian_seed)
    direct = hessian_summary(model, F.cross_entropy, batches, tol=s.hessian_tol,
                             trace_tol=s.hessian_trace_tol, max_iter=s.hessian_max_iter,
                             seed=s.hessian_seed)
    assert s.hessian_top_data == "test"  # ptmz: λmax on a test sample, as PTMZ publishes it
    test = sample_batches(split.x_test, split.y_test, s.hessian_batches, s.hessian_batch_size,
                          s.hessian_seed)
    top = hessian_top_eigenvalue(model, F.cross_entropy, test, tol=s.hessian_tol,
                                 max_iter=s.hessian_max_iter, seed=s.hessian_seed)
    assert row["hessian_top_eigenvalue"] == pytest.approx(top, rel=1e-5)
    assert row["hessian_trace"] == pytest.approx(direct.trace, rel=1e-5)


def test_htsr_columns_match_per_model_analysis():
    """The batched population pass equals analysing each model alone; lists follow layer_names."""
    import torch
    from torch import nn

    from phasezoo.metrics import HTSR_LAYER_COLUMNS, htsr_columns

    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(nn.Sequential(nn.Linear(300, 64), nn.ReLU(), nn.Linear(64, 40), nn.ReLU(),
                                    nn.Linear(40, 4)))  # the last layer: 4 eigenvalues, skipped
    settings = load_config("config/config.yaml").zoo("mnist-mlp").metrics  # FARMS on, median fit
    assert (settings.farms, settings.farms_fit, settings.farms_filter_zeros) == (True, "median", False)
    rows = htsr_columns(models, settings)
    assert htsr.layer_names(models[0]) == ["0", "2", "4"]
    for model, row in zip(models, rows, strict=True):
        alone = htsr.analyze(model)
        assert list(alone["layer"]) == ["0", "2"]
        for col, name in HTSR_LAYER_COLUMNS.items():
            assert row[name][:2] == pytest.approx(list(alone[col]), rel=1e-12)
            assert np.isnan(row[name][2])
        assert row["alpha_mean"] == pytest.approx(alone["alpha"].mean(), rel=1e-12)
        assert row["farms_alpha_mean"] == pytest.approx(alone["farms_alpha"].mean(), rel=1e-12)
        assert alone.attrs["farms"]["fit"] == "farms-median"
    assert rows[0]["layer_alpha"] != rows[1]["layer_alpha"]  # different models, different rows
