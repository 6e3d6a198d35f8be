"""Hessian λmax on training data (`hessian_top_eigenvalue` under `llt`) vs on test data (what
PTMZ publishes as `log_hessian_top_ev_val`, and `ptmz` follows): how large is the difference?

PTMZ's `src/ptmz/loss_landscape/hessian_metric.py` builds two PyHessian objects per model, one on
the first 10 × 64 samples of its train loader and one on its test loader, and its summary CSVs
keep the trace of the first (`log_hessian_trace_train`) and the top eigenvalue of the second
(`log_hessian_top_ev_val`). phasezoo took both from a fixed training sample until
`metrics.hessian_top_data` (ptmz: test) followed PTMZ; this measured why that matters.

For the last kept checkpoint of every seed of a few default-zoo cells (trained now if
`results/` lacks them) this prints λmax on the zoo's training sample, on a second training
sample drawn with another seed (the sampling noise, for scale) and on an equal-sized test
sample (same seed), all with phasezoo's Lanczos at the zoo's settings, and the ratios
test / train and train' / train. The last lines summarise the ratios per cell and overall.

    python benchmarks/hessian_split.py [--cells batch_size-16_width-8 ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from hessian import population  # benchmarks/hessian.py: the cell, trained if needed

from phasezoo.data import cell_split
from phasezoo.landscape.hessian import hessian_top_eigenvalue, sample_batches
from phasezoo.settings import MetricsSettings
from phasezoo.tasks import Task

CELLS = [f"batch_size-{b}_width-{w}" for b in (16, 256, 4096) for w in (8, 32, 128)]


def top(model: torch.nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor,
        settings: MetricsSettings, seed: int) -> float:
    """λmax of the loss on ``hessian_batches × hessian_batch_size`` samples of (x, y) drawn with
    ``seed``, as the metrics stage computes it."""
    batches = sample_batches(x, y, settings.hessian_batches, settings.hessian_batch_size, seed)
    return hessian_top_eigenvalue(model, task, batches, tol=settings.hessian_tol,
                                  max_iter=settings.hessian_max_iter, seed=settings.hessian_seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--zoo", default="mnist-mlp")
    parser.add_argument("--cells", nargs="+", default=CELLS)
    args = parser.parse_args()
    print(f"{'cell':>26} {'seed':>4} {'epoch':>5} {'λ train':>9} {'λ train′':>9} {'λ test':>9} "
          f"{'test/train':>10} {'train′/train':>12}")
    ratios: dict[str, list[float]] = {}
    noise: list[float] = []
    for cell_id in args.cells:
        cfg, cell, pop = population(args.config, args.zoo, cell_id)
        s = cfg.zoo(args.zoo).metrics
        split = cell_split(cell.hparams, cfg.data_root)
        last = max(int(e) for e in pop.kept_epochs)
        for i, k, epoch in pop.checkpoints():
            if epoch != last or pop.diverged_at(i, epoch):
                continue
            model = pop.model(i, k)
            tr = top(model, split.task, split.x_train, split.y_train, s, s.hessian_seed)
            tr2 = top(model, split.task, split.x_train, split.y_train, s, s.hessian_seed + 1)
            te = top(model, split.task, split.x_test, split.y_test, s, s.hessian_seed)
            ratios.setdefault(cell_id, []).append(te / tr)
            noise.append(tr2 / tr)
            print(f"{cell_id:>26} {int(pop.seeds[i]):4d} {epoch:5d} {tr:9.4g} {tr2:9.4g} {te:9.4g} "
                  f"{te / tr:10.3f} {tr2 / tr:12.3f}")
    print("\nper cell, test/train λmax: mean over seeds [min, max]")
    for cell_id, r in ratios.items():
        print(f"{cell_id:>26}: {np.mean(r):.3f} [{min(r):.3f}, {max(r):.3f}]")
    every = [v for r in ratios.values() for v in r]
    print(f"all {len(every)} checkpoints: test/train median {np.median(every):.3f}, "
          f"range [{min(every):.3f}, {max(every):.3f}]; train′/train (another training "
          f"sample) median {np.median(noise):.3f}, range [{min(noise):.3f}, {max(noise):.3f}]")


if __name__ == "__main__":
    main()
