"""Seconds the three-regime study adds to the studies job of a zoo (default: the default zoo).

The studies job as the DAG runs it on ``config/config.yaml``'s zoo (``phasezoo studies
zoos/mnist-mlp``, with its ``studies`` section: transfer to sklearn-digits, 1 fine-tuning
epoch), timed twice in one process: before (the three-regime study off: the zoo's protocol is
reported unreadable, so no cell is pruned or retrained) and after (on, at the study's default
densities and retraining budget, :class:`phasezoo.wsl.regimes.RegimeSettings`). Both runs read
the same zoo and data; the data split is built in each run. Prints both times side by side and
the difference.

    python benchmarks/regimes.py [--zoo zoos/mnist-mlp] [--data-root data]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from unittest import mock

from phasezoo.wsl import regimes
from phasezoo.wsl.finetune import FinetuneSettings
from phasezoo.wsl.studies import run_studies


def timed_studies(zoo: str, data_root: str, with_regimes: bool) -> tuple[float, dict]:
    """Wall seconds of one studies run of ``zoo`` (the default zoo's transfer settings), and
    its result."""
    off = mock.patch.object(regimes, "zoo_protocol_or_reason",
                            return_value=(None, "off for the benchmark"))
    start = time.perf_counter()
    with contextlib.nullcontext() if with_regimes else off:
        result = run_studies(zoo, data_root, progress=False, transfer_dataset="sklearn-digits",
                             finetune=FinetuneSettings(epochs=1))
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="zoos/mnist-mlp")
    parser.add_argument("--data-root", default="data")
    args = parser.parse_args()
    before, _ = timed_studies(args.zoo, args.data_root, with_regimes=False)
    after, result = timed_studies(args.zoo, args.data_root, with_regimes=True)
    section = result["regimes"]
    points = len(section["points"])
    print(f"zoo: {args.zoo}; densities {section.get('densities')}, retrain epochs "
          f"{section.get('retrain_epochs')}, {points} (temperature, load, density) points")
    print(f"{'studies job':<28}{'seconds':>10}")
    print(f"{'before (no three regimes)':<28}{before:>10.1f}")
    print(f"{'after (three regimes)':<28}{after:>10.1f}")
    print(f"added: {after - before:.1f} s ({after / before:.2f}×)")


if __name__ == "__main__":
    main()
