"""Cost of the learned baselines (``neuron_sets``, ``nfn``) on the catalogue: measured on the
twins' layouts, extrapolated to the full zoos.

    python benchmarks/wsl_learned.py                        # every twin, then the estimate
    python benchmarks/wsl_learned.py --zoo zoos-showcase/showcase   # a published zoo too

For each twin config (``config/zoos/*-mini.yaml``) it builds the twin's rows as the DAG would
publish them — every cell × seed × kept epoch, the model at the cell's width with the twin's
input shape and classes — from seeded random initialisations (timing needs the layouts, not
trained values), then times on this machine's cores: the tokens of every row (once per zoo),
one ``neuron_sets`` fit on the random split's training and validation cells (and ``nfn``'s where
it applies), and the whole benchmark job (every baseline but ``htsr+gbm``, which needs the
DAG's HT-SR columns; both learned methods; the learning curve). ``--zoo`` adds published zoos.

The estimate for a full zoo: token extraction at the rate measured on one large row (a
ResNet-50 at width 64; the sort dominates) times the zoo's values, plus its fits (2 tasks and 4
learning-curve points per seed, ``benchmark.seeds`` seeds), each ``epochs`` passes over its rows
at the training-step time measured on the zoo's widest layout. Reading the weights from disk
is not counted. Printed as markdown tables (docs/wsl.md quotes them).
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from phasezoo.config import load_config
from phasezoo.estimate import architecture_cost, data_shape
from phasezoo.models import architecture_spec, create_model
from phasezoo.splits import computed_splits
from phasezoo.weights import describe, flatten_state
from phasezoo.wsl.baselines import BASELINES, LEARNED
from phasezoo.wsl.benchmark import run_benchmark
from phasezoo.wsl.methods import MethodUnsupported, Rows
from phasezoo.wsl.neuron_sets import (NeuronSetMethod, NeuronSetSettings, STATISTICS,
                                      tensor_sets, token_arrays)
from phasezoo.wsl.nfn import NFNMethod
from phasezoo.wsl.table import ZooTable, load_zoo

PHASES = ("I", "II", "III", "IV-A", "IV-B")
CURVE_POINTS = 4  # learning-curve fits per seed (phasezoo.wsl.learning_curve.CURVE_FRACTIONS)


def twin_table(path: str) -> ZooTable:
    """A twin's rows as published (cells × seeds × kept epochs at each cell's width), from
    seeded random weights; targets and phases drawn at random (timing only)."""
    (zoo,) = load_config(path).zoos.values()
    data = data_shape(zoo)
    rng = np.random.default_rng(0)
    meta, weights, layouts = [], [], []
    for c, cell in enumerate(zoo.cells()):
        arch = architecture_spec(cell.recipe.model, data.input_shape, data.outputs)
        for seed in zoo.seeds:
            for epoch in zoo.train.keep_epochs:
                torch.manual_seed(len(weights))
                model = create_model(arch["name"], **arch["kwargs"])
                weights.append(flatten_state(model).numpy())
                layouts.append(describe(model, arch))
                meta.append({"model_id": f"{zoo.name}/{cell.id}/seed-{seed}", "zoo": zoo.name,
                             "cell": cell.id, "seed": seed, "epoch": epoch,
                             "temperature_name": zoo.temperature.name,
                             "temperature_value": float(cell.temperature[1]),
                             "load_name": zoo.load.name,
                             "load_value": float(cell.load[1]),
                             "train_accuracy": rng.uniform(), "test_accuracy": rng.uniform(),
                             "phase": PHASES[c % len(PHASES)], "diverged": False})
    return ZooTable(pd.DataFrame(meta), weights, layouts, {})


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, table: ZooTable, seeds: int) -> dict:
    """Token time, one fit of each learned method, the whole benchmark job; and the sizes the
    estimate scales by."""
    s = NeuronSetSettings()
    every = Rows(table, np.arange(len(table)))
    tokens = _seconds(lambda: token_arrays(every, s))
    split = next(x for x in computed_splits(table.meta).for_seed(table.meta, 0)
                 if x.name == "random")
    y = table.meta["test_accuracy"].to_numpy()
    fits = {}
    for method, factory in (("neuron_sets", NeuronSetMethod), ("nfn", NFNMethod)):
        m = factory()
        try:
            fits[method] = _seconds(lambda m=m: m.fit(
                Rows(table, split.train), y[split.train], Rows(table, split.val),
                y[split.val], "regression", 0))
        except MethodUnsupported:
            fits[method] = math.nan
    baselines = {k: v for k, v in BASELINES.items() if k != "htsr+gbm"}
    job = _seconds(lambda: run_benchmark(table, seeds=seeds, baselines=baselines,
                                         methods=dict(LEARNED), curve=True))
    sets = tensor_sets(table.layouts[0])
    k = min(s.token_cap, max(t.units for lay in table.layouts for t in tensor_sets(lay)))
    return {"zoo": name, "rows": len(table), "cells": table.meta["cell"].nunique(),
            "values": int(sum(len(w) for w in every.weights())), "tensors": len(sets), "k": k,
            "train_rows": len(split.train), "val_rows": len(split.val), "tokens_s": tokens,
            "neuron_sets_fit_s": fits["neuron_sets"], "nfn_fit_s": fits["nfn"],
            "benchmark_job_s": job}


def published(path: str) -> dict:
    table = load_zoo(path)
    return measure(Path(path).name, table, seeds=1)


def extraction_rate(width: int = 64) -> float:
    """Seconds per value of token extraction on one large row: a ResNet-50 at ``width`` on
    CIFAR-shaped input (24M values at 64; the twins' rows are too small to show the sort)."""
    arch = {"name": "resnet50", "kwargs": {"width": width, "input_shape": [3, 32, 32],
                                           "num_classes": 10}}
    model = create_model(arch["name"], **arch["kwargs"])
    table = ZooTable(pd.DataFrame({"cell": ["c"]}), [flatten_state(model).numpy()],
                     [describe(model, arch)], {})
    seconds = _seconds(lambda: token_arrays(Rows(table, np.arange(1)), NeuronSetSettings()))
    return seconds / len(table.weights[0])


def step_seconds(sets: int, k: int, features: int, steps: int = 20) -> float:
    """Seconds of one training step (batch of ``batch_size`` rows, forward, backward, Adam) of
    the default network on ``sets`` tensors × ``k`` tokens × ``features`` features."""
    from phasezoo.wsl.neuron_sets import NeuronSetNet

    s = NeuronSetSettings()
    torch.manual_seed(0)
    net = NeuronSetNet(sets, features, 1, s)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    batch = (torch.randn(s.batch_size, sets, k, features),
             torch.ones(s.batch_size, sets, k, dtype=torch.bool),
             torch.randn(s.batch_size, sets, 2))

    def run() -> None:
        for _ in range(steps):
            loss = net(batch).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _seconds(run) / steps


def full_zoo_estimate(path: str, per_value: float) -> dict:
    """A full zoo's neuron_sets cost on this machine: tokens of every row once, plus every fit
    of the benchmark job (2 tasks + 4 curve points per seed; the curve's points use ⅛ … all of
    the training cells: 1.875× one full fit in all). A fit is ``epochs`` passes over 60 % of the
    rows (training steps) and 20 % (validation forward passes, a third of a step's cost),
    at the step time measured on the zoo's widest layout."""
    (zoo,) = load_config(path).zoos.values()
    s = NeuronSetSettings()
    widths = [int(v) for v in zoo.load.values] if zoo.load.name == "width" else [zoo.model.width]
    arch = {w: architecture_cost(zoo, w) for w in widths}
    per_cell = len(zoo.seeds) * len(zoo.train.keep_epochs)
    values = sum(arch[c.recipe.model.width].values * per_cell for c in zoo.cells())
    rows = len(zoo.cells()) * per_cell
    data = data_shape(zoo)
    with torch.device("meta"):
        spec = architecture_spec(zoo.cells()[-1].recipe.model, data.input_shape, data.outputs)
        sets = tensor_sets(describe(create_model(spec["name"], **spec["kwargs"]), spec))
    k = min(s.token_cap, max(t.units for t in sets))
    features = STATISTICS + max(len(t.attached) for t in sets)
    steps = s.epochs * (0.6 * rows + 0.2 * rows / 3) / s.batch_size
    one_fit = steps * step_seconds(len(sets), k, features)
    fits = zoo.benchmark.seeds * (2 + 1.875)
    return {"zoo": zoo.name, "rows": rows, "weights_GiB": values * 4 / 2**30,
            "tensors": len(sets), "k": k, "tokens_h": per_value * values / 3600,
            "one_fit_min": one_fit / 60, "fits": fits, "fits_h": fits * one_fit / 3600,
            "feature_MB": rows * len(sets) * k * features * 4 / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", action="append", default=[], help="a published zoo too")
    parser.add_argument("--twins", default="config/zoos/*-mini.yaml")
    a = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for path in sorted(glob.glob(a.twins)):
        (zoo,) = load_config(path).zoos.values()
        rows.append(measure(zoo.name, twin_table(path), zoo.benchmark.seeds))
        print(pd.DataFrame(rows[-1:]).to_markdown(index=False, floatfmt=".3g"), flush=True)
    extra = [published(p) for p in a.zoo]
    print("\n## Measured\n")
    print(pd.DataFrame(rows + extra).to_markdown(index=False, floatfmt=".3g"))
    print(f"\ntwins' benchmark jobs: {sum(r['benchmark_job_s'] for r in rows):.0f} s in all")
    per_value = extraction_rate()
    print(f"token extraction: {per_value * 1e9:.1f} s per 10⁹ values (a ResNet-50 row at width "
          "64)")
    full = sorted(p for p in glob.glob("config/zoos/*.yaml") if not p.endswith("-mini.yaml"))
    print("\n## Full catalogue, extrapolated\n")
    print(pd.DataFrame([full_zoo_estimate(p, per_value) for p in full]).to_markdown(
        index=False, floatfmt=".3g"))

if __name__ == "__main__":
    main()
