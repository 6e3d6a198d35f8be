"""HTSR layer metrics of a population of MLPs: WeightWatcher 0.7.7 vs phasezoo, side by side.

The models are every kept checkpoint of the default zoo's width-128 MLP cells (784-128-128-10):
``batch_size-{64,16,256,1024,4096}_width-128`` under ``results/mnist-mlp/`` (5 cells × 3 seeds ×
4 kept epochs = 60 models). WeightWatcher analyses one model at a time, as a user would call it
(its default options, plots and extras off); phasezoo analyses the whole population with one
:func:`phasezoo.htsr.analyze_many` call (FARMS off: WeightWatcher computes none). Every layer's α
must agree to 1e-6 (x_min and KS distance are reported too).

The floor is the bare batched eigenvalue work of the same matrices, timed alone: the matrices
``analyze_many`` queues, already stacked per shape and cast to float64 (outside the timing), each
stack through one batched float64 Gram product and one batched ``torch.linalg.eigvalsh``
(:func:`phasezoo.htsr.squared_singular_values`) — the same linear algebra ``analyze_many`` does,
without reading the weights out of the modules, the fits or building the frames.

Each tool runs ``--repeats`` times, alternating, and its fastest run counts (the machine is
shared). torch's OpenMP threads and OpenBLAS's (scipy, inside WeightWatcher) keep spinning for a
while after their last task and slow the other library down right after a switch (measured:
scipy's SVD 2× slower just after a torch call), so every timed run starts after a short pause.

The last line is ``speedup: X`` = WeightWatcher time / phasezoo time.

    python benchmarks/htsr.py [--repeats 7] [--farms]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

from phasezoo import htsr
from phasezoo.checkpoints import read_population
from phasezoo.htsr import analysis, spectra

ROOT = Path(__file__).resolve().parents[1]
CELLS = [f"batch_size-{bs}_width-128" for bs in (64, 16, 256, 1024, 4096)]
TOL = 1e-6
PAUSE = 0.5  # s before each timed run: the other library's spinning threads go idle


def load_models() -> list[torch.nn.Module]:
    """Every kept checkpoint of the width-128 cells (exit 1 if a cell's train.h5 is missing)."""
    paths = [ROOT / "results" / "mnist-mlp" / cell / "train.h5" for cell in CELLS]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print("missing:", *missing, sep="\n  ")
        sys.exit(1)
    models = []
    for path in paths:
        pop = read_population(path)
        models += [pop.model(i, k) for i, k, _ in pop.checkpoints()]
    return models


def run_weightwatcher(models: list[torch.nn.Module]) -> list:
    """WeightWatcher's details frame of every model (its "SMALL N PL FIT" prints swallowed)."""
    import weightwatcher

    out = []
    with contextlib.redirect_stdout(io.StringIO()):
        for m in models:
            out.append(weightwatcher.WeightWatcher(model=m).analyze(
                plot=False, randomize=False, mp_fit=False, vectors=False, detX=False,
                savefig=False))
    return out


def run_floor(stacks: list[torch.Tensor]) -> None:
    for s in stacks:
        htsr.squared_singular_values(s)


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def compare(ours: list, theirs: list) -> dict[str, float]:
    """Largest relative differences per metric; raises if layers differ or |Δα| > TOL."""
    worst = {"alpha": 0.0, "xmin": 0.0, "D": 0.0}
    layers = 0
    for df, ww in zip(ours, theirs, strict=True):
        ww = ww.set_index("longname")
        if list(df["layer"]) != list(ww.index):
            raise AssertionError(f"different layers: {list(df['layer'])} vs {list(ww.index)}")
        for col, ref in (("alpha", "alpha"), ("xmin", "xmin"), ("ks_distance", "D")):
            a, b = df[col].to_numpy(float), ww[ref].to_numpy(float)
            worst[ref] = max(worst[ref], float(np.max(np.abs(a - b) / np.abs(b))))
        dalpha = np.abs(df["alpha"].to_numpy(float) - ww["alpha"].to_numpy(float))
        if np.any(dalpha > TOL):
            raise AssertionError(f"|Δα| = {dalpha.max():.3g} > {TOL}")
        layers += len(df)
    worst["layers"] = layers
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--farms", action="store_true", help="also time analyze_many with FARMS")
    args = parser.parse_args()

    models = load_models()
    jobs = spectra.EigenJobs()  # the matrices analyze_many queues, for the floor
    with torch.no_grad():
        for m in models:
            analysis._plan_model(m, jobs, farms=False, farms_window=htsr.FARMS_WINDOW,
                             farms_q=htsr.FARMS_Q, farms_ops=htsr.FARMS_OPS,
                             min_evals=htsr.MIN_EVALS, max_evals=htsr.MAX_EVALS, max_n=htsr.MAX_N)
    stacks = jobs.stacks()

    best = {"weightwatcher": np.inf, "phasezoo": np.inf, "floor": np.inf}
    ours = theirs = None
    run_weightwatcher(models[:2])  # warm-ups: imports, caches
    htsr.analyze_many(models[:2], farms=False)
    run_floor(stacks)
    for _ in range(args.repeats):
        time.sleep(PAUSE)
        t, theirs = timed(run_weightwatcher, models)
        best["weightwatcher"] = min(best["weightwatcher"], t)
        time.sleep(PAUSE)
        t, ours = timed(lambda: htsr.analyze_many(models, farms=False))
        best["phasezoo"] = min(best["phasezoo"], t)
        time.sleep(PAUSE)
        t, _ = timed(run_floor, stacks)
        best["floor"] = min(best["floor"], t)

    worst = compare(ours, theirs)
    shapes = ", ".join(f"{len(s)} × {tuple(s.shape[1:])}" for s in stacks)
    print(f"{len(models)} models (784-128-128-10), {worst['layers']} layers; "
          f"torch threads {torch.get_num_threads()}; best of {args.repeats}")
    print(f"matrices (one batched Gram + eigvalsh per shape): {shapes}")
    print(f"agreement with WeightWatcher (max relative): alpha {worst['alpha']:.1e}, "
          f"xmin {worst['xmin']:.1e}, KS {worst['D']:.1e} (|Δα| ≤ {TOL:g} on every layer)")
    print(f"{'tool':<34}{'total s':>9}{'ms/model':>10}")
    rows = [("WeightWatcher 0.7.7 (per model)", best["weightwatcher"]),
            ("phasezoo analyze_many", best["phasezoo"]),
            ("floor: batched eigenvalues alone", best["floor"])]
    for name, t in rows:
        print(f"{name:<34}{t:>9.3f}{1000 * t / len(models):>10.2f}")
    if args.farms:
        t, _ = timed(lambda: htsr.analyze_many(models, farms=True))
        print(f"{'phasezoo analyze_many + FARMS':<34}{t:>9.3f}{1000 * t / len(models):>10.2f}")
    print(f"phasezoo / floor: {best['phasezoo'] / best['floor']:.2f}")
    print(f"speedup: {best['weightwatcher'] / best['phasezoo']:.2f}")


if __name__ == "__main__":
    main()
