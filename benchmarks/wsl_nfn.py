"""Time of one NFN baseline fit on a published zoo with PyTorch's own CPU kernels (phasezoo's
choice) against oneDNN's, measured side by side in one run.

    python benchmarks/wsl_nfn.py zoos/mnist-mlp

Prints each fit's seconds and the last line ``speedup: X`` (oneDNN time / plain time).
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings

import numpy as np
import torch

from phasezoo.wsl import nfn
from phasezoo.wsl.methods import Rows
from phasezoo.wsl.table import load_zoo


def _fit_seconds(table, kernels) -> float:
    y = table.meta["test_accuracy"].to_numpy()
    idx = np.random.default_rng(0).permutation(len(table))
    n = int(0.6 * len(idx))
    method = nfn.NFNMethod(nfn.NFNSettings(epochs=2))
    start = time.perf_counter()
    with kernels():
        method.fit(Rows(table, idx[:n]), y[idx[:n]], Rows(table, idx[n:]),
                                 y[idx[n:]], "regression", 0)
    return time.perf_counter() - start


@contextlib.contextmanager
def _onednn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.backends.mkldnn.flags(enabled=True):
            yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", help="a published zoo of MLPs (folder or hub id)")
    table = load_zoo(parser.parse_args().zoo)
    plain_kernels = nfn.plain_kernels
    nfn.plain_kernels = _onednn  # the method's own switch, pointed at oneDNN
    onednn = _fit_seconds(table, _onednn)
    nfn.plain_kernels = plain_kernels
    plain = _fit_seconds(table, plain_kernels)
    print(f"NFN fit, 2 epochs, {len(table)} rows: oneDNN {onednn:.1f} s, plain {plain:.1f} s")
    print(f"speedup: {onednn / plain:.2f}")


if __name__ == "__main__":
    main()
