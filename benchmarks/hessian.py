"""Hessian λmax and trace for every kept checkpoint of one default-zoo cell: PyHessian vs phasezoo.

Both run side by side in this process on the same models and the same fixed sample (10 batches
× 64 training images, the phase-transition zoo's setting). PyHessian 0.1 runs at its defaults
(power iteration and Hutchinson, maxIter 100, tol 1e-3) in its multi-batch (dataloader) mode, with
``model.zero_grad(set_to_none=True)`` before each construction (docs/reference-libraries.md: otherwise its
gradients accumulate and λmax comes out 2-12× too large). phasezoo runs at the zoo's config
defaults (Lanczos tol 1e-3, deflated-Hutchinson trace tol 1e-2). Both are measured against the
exact Hessian (dense, float64, from batched HVPs of every basis vector).

The last line is ``speedup: X`` = PyHessian time / phasezoo time, summed over the checkpoints
where phasezoo's errors (λmax and trace) are both no larger than PyHessian's.

    python benchmarks/hessian.py [--cell batch_size-64_width-8]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from phasezoo.checkpoints import read_population
from phasezoo.config import load_config
from phasezoo.data import cell_split
from phasezoo.landscape.hessian import HessianOperator, hessian_summary, sample_batches
from phasezoo.settings import MetricsSettings
from phasezoo.train import train_cell


def exact_hessian(model: torch.nn.Module, batches: list, chunk: int = 256) -> torch.Tensor:
    """The dense Hessian in float64, one batched HVP per ``chunk`` basis vectors."""
    model = copy.deepcopy(model).double()
    op = HessianOperator(model, F.cross_entropy, [(x.double(), y) for x, y in batches])
    eye = torch.eye(op.n, dtype=torch.float64)
    rows = []
    for s in range(0, op.n, chunk):
        v = eye[s:s + chunk]
        parts, o = [], 0
        for p in op.params:
            parts.append(v[:, o:o + p.numel()].reshape(-1, *p.shape))
            o += p.numel()
        hv = torch.autograd.grad(op.grads[0], op.params, grad_outputs=parts, retain_graph=True,
                                 is_grads_batched=True)
        rows.append(torch.cat([h.reshape(len(v), -1) for h in hv], 1))
    h = torch.cat(rows)
    return 0.5 * (h + h.T)


def pyhessian_run(model: torch.nn.Module, batches: list, seed: int) -> tuple[float, float, float]:
    """(λ, trace, seconds) from PyHessian 0.1 at its defaults."""
    from pyhessian import hessian

    torch.manual_seed(seed)  # PyHessian draws its vectors from the global RNG
    t0 = time.perf_counter()
    model.zero_grad(set_to_none=True)
    h = hessian(model, F.cross_entropy, dataloader=batches, cuda=False)
    top = h.eigenvalues()[0][0]
    trace = float(np.mean(h.trace()))
    return top, trace, time.perf_counter() - t0


def phasezoo_run(model: torch.nn.Module, batches: list, settings: MetricsSettings) -> tuple[float, float, float, int]:
    """(λmax, trace, seconds, HVPs) from phasezoo at the config defaults."""
    t0 = time.perf_counter()
    out = hessian_summary(model, F.cross_entropy, batches, tol=settings.hessian_tol,
                          trace_tol=settings.hessian_trace_tol,
                          max_iter=settings.hessian_max_iter, seed=settings.hessian_seed)
    return out.top_eigenvalue, out.trace, time.perf_counter() - t0, out.hvps


def population(config: str, zoo: str, cell_id: str):
    """The cell's trained population (trained now if the default zoo has not been run)."""
    cfg = load_config(config)
    cell = cfg.zoo(zoo).cell_by_id(cell_id)
    path = Path(cfg.results_dir) / zoo / cell_id / "train.h5"
    if not path.exists():
        train_cell(cell, path, torch.device("cpu"), cfg.data_root)
    return cfg, cell, read_population(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--zoo", default="mnist-mlp")
    parser.add_argument("--cell", default="batch_size-64_width-8")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg, cell, pop = population(args.config, args.zoo, args.cell)
    settings = cfg.zoo(args.zoo).metrics
    split = cell_split(cell.recipe, cfg.data_root)
    batches = sample_batches(split.x_train, split.y_train, settings.hessian_batches,
                             settings.hessian_batch_size, settings.hessian_seed)
    print(f"{args.zoo} {args.cell}: {len(list(pop.checkpoints()))} checkpoints, "
          f"{sum(len(x) for x, _ in batches)} samples in {len(batches)} batches")
    print(f"{'ckpt':>12} {'exact λmax':>11} {'exact tr':>10} | {'PyH λ err':>9} {'PyH tr err':>10} "
          f"{'PyH s':>6} | {'pz λ err':>9} {'pz tr err':>9} {'pz s':>6} {'HVPs':>5}")
    t_ref = t_ours = t_ref_all = t_ours_all = 0.0
    counted = 0
    for i, k, epoch in pop.checkpoints():
        model = pop.model(i, k)
        ev = torch.linalg.eigvalsh(exact_hessian(model, batches))
        lam, tr = float(ev[-1]), float(ev.sum())
        p_lam, p_tr, p_s = pyhessian_run(model, batches, seed=1000 + 10 * i + k)
        z_lam, z_tr, z_s, hvps = phasezoo_run(model, batches, settings)
        errs = [abs(p_lam / lam - 1), abs(p_tr / tr - 1), abs(z_lam / lam - 1), abs(z_tr / tr - 1)]
        ok = errs[2] <= errs[0] and errs[3] <= errs[1]
        t_ref_all, t_ours_all = t_ref_all + p_s, t_ours_all + z_s
        if ok:
            t_ref, t_ours, counted = t_ref + p_s, t_ours + z_s, counted + 1
        print(f"s{int(pop.seeds[i])}/e{epoch:<9} {lam:11.4g} {tr:10.4g} | {errs[0]:9.2e} {errs[1]:10.2e} "
              f"{p_s:6.2f} | {errs[2]:9.2e} {errs[3]:9.2e} {z_s:6.2f} {hvps:5d}"
              + ("" if ok else "  (not counted: phasezoo less accurate)"))
    print(f"all checkpoints: PyHessian {t_ref_all:.1f} s, phasezoo {t_ours_all:.1f} s, "
          f"ratio {t_ref_all / t_ours_all:.2f}")
    print(f"counted {counted} of {len(list(pop.checkpoints()))} checkpoints")
    print(f"speedup: {t_ref / t_ours if t_ours else float('nan'):.2f}")


if __name__ == "__main__":
    main()
