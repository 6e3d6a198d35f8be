"""Reading every row's weights of a published zoo: ``datasets.load_dataset`` (cold Arrow cache)
against h5py on the same shards, side by side in one run.

    python benchmarks/zoo_read.py [ZOO_DIR ...]      # default: zoos/mnist-mlp (make demo)

For each zoo: h5py opens every shard and reads each row's weights (the reference, the fastest
a reader of these files can be); ``datasets`` builds its Arrow cache in a fresh temporary folder
and reads each row's weights as NumPy by index, then loads and reads again from the built cache
(what every later ``load_dataset`` of the zoo costs); then ``streaming=True`` (no cache). The OS page
cache is warmed by a first h5py pass, so both sides read from memory. Prints seconds, peak
private memory and, last, ``ratio: X`` = h5py time / datasets time (goal ≥ 0.5) for the first
zoo. Only ``datasets``, ``h5py`` and NumPy are used on the measured paths.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import datasets
import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from phasezoo.memory import PeakMemory, human_bytes  # noqa: E402  (torch-free)


def h5py_pass(zoo: Path) -> int:
    values = 0
    for shard in sorted((zoo / "data").glob("*.h5")):
        with h5py.File(shard, "r") as f:
            w = f["weights"]
            for i in range(w.shape[0]):
                values += w[i].size
    return values


def datasets_pass(zoo: Path, cache: str) -> int:
    ds = datasets.load_dataset(str(zoo), split="train", cache_dir=cache)
    ds = ds.select_columns(["weights"]).with_format("numpy")
    return sum(ds[i]["weights"].size for i in range(len(ds)))


def streaming_pass(zoo: Path) -> int:
    ds = datasets.load_dataset(str(zoo), split="train", streaming=True)
    return sum(np.asarray(r["weights"]).size for r in ds.select_columns(["weights"])
               .with_format("numpy"))


def timed(fn, *args) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        n = fn(*args)
    return time.perf_counter() - t0, mem.peak, n


def main(zoos: list[str]) -> None:
    datasets.disable_progress_bars()
    ratios = []
    for zoo in map(Path, zoos):
        h5py_pass(zoo)  # warm the page cache for both sides
        th, mh, n = timed(h5py_pass, zoo)
        with tempfile.TemporaryDirectory() as cache:
            td, md, m = timed(datasets_pass, zoo, cache)
            tw, mw, _ = timed(datasets_pass, zoo, cache)  # the cache is built: a later load
        ts, ms, k = timed(streaming_pass, zoo)
        if not n == m == k:
            raise SystemExit(f"{zoo}: value counts differ: h5py {n}, datasets {m}, stream {k}")
        print(f"{zoo}: {n:,} values ({human_bytes(4 * n)})")
        print(f"  h5py                   {th:8.3f} s  peak {human_bytes(mh)}")
        print(f"  datasets (cold cache)  {td:8.3f} s  peak {human_bytes(md)}  ratio {th / td:.3f}")
        print(f"  datasets (warm cache)  {tw:8.3f} s  peak {human_bytes(mw)}  ratio {th / tw:.3f}")
        print(f"  datasets streaming     {ts:8.3f} s  peak {human_bytes(ms)}  ratio {th / ts:.3f}")
        ratios.append(th / td)
    print(f"ratio: {ratios[0]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["zoos/mnist-mlp"])
