"""Rehearse a zoo's publication at its real row sizes before any GPU-hour is spent.

``phasezoo rehearse`` builds the chosen cells' real models at initialisation (epoch 0, no data,
no training), publishes them through the writer ``publish`` uses
(:func:`phasezoo.zoo.publish_cells`), verifies the zoo, reads every row back with
``datasets.load_dataset`` (in memory and with ``streaming=True``), compares each row bit for bit
with the shard, rebuilds one row with :func:`phasezoo.zoo.load_model`, and reports each step's
time and peak private memory and the bytes on disk. A zoo that cannot be published, loaded or
held in memory on the user's machine fails here, in minutes, not after its training.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from phasezoo.config import Cell, ZooSpec
from phasezoo.dataset_facts import dataset_facts
from phasezoo.memory import PeakMemory, folder_bytes, human_bytes

REHEARSAL_NOTE = ("**Rehearsal**: every model at its initialisation (epoch 0), metrics NaN, "
                  "written by `phasezoo rehearse` to size and test the format; not a zoo to "
                  "study.")


@dataclass
class Step:
    """One step of a rehearsal: what it did, how long, its peak private memory."""

    name: str
    seconds: float
    peak_bytes: int
    detail: str = ""


@dataclass
class Rehearsal:
    """What a rehearsal measured; ``rows`` × ``row_values`` is the largest row's share."""

    zoo: str
    cells: list[str]
    rows: int
    row_values: int
    zoo_bytes: int = 0
    arrow_cache_bytes: int = 0
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


class InitialWeights:
    """``[member, 0]`` → the flat initial weights of that seed's model, built on demand (one
    model in memory at a time), so a rehearsal's "train.h5" needs no file and no training."""

    def __init__(self, arch: dict, seeds: list[int]) -> None:
        self.arch, self.seeds = arch, seeds
        self.shape = (len(seeds), 1, 0)

    def __getitem__(self, key: tuple[int, int]) -> np.ndarray:
        from phasezoo.models import create_model
        from phasezoo.runtime import seeded
        from phasezoo.weights import flatten_state

        member, kept = key
        if kept != 0:
            raise IndexError("a rehearsal keeps only epoch 0")
        with seeded(self.seeds[member]):
            model = create_model(self.arch["name"], **self.arch["kwargs"])
        return flatten_state(model).numpy()


def largest_cell(zoo: ZooSpec) -> Cell:
    """The cell with the longest rows (the one that decides whether a zoo fits)."""
    from phasezoo.estimate import architecture_cost

    sizes: dict[int, int] = {}
    for cell in zoo.cells():
        width = cell.recipe.model.width
        if width not in sizes:
            sizes[width] = architecture_cost(zoo, width).values
    return max(zoo.cells(), key=lambda c: sizes[c.recipe.model.width])


def initial_population(zoo: ZooSpec, cell: Cell, seeds: list[int]):
    """A :class:`~phasezoo.checkpoints.Population` of the cell's models at initialisation, one
    kept epoch (0), its weights made when read; no dataset is loaded (shapes from the config)."""
    from phasezoo.checkpoints import Population
    from phasezoo.estimate import data_shape
    from phasezoo.models import architecture_spec, create_model
    import torch
    from phasezoo.weights import describe

    shape = data_shape(zoo)
    arch = architecture_spec(cell.recipe.model, shape.input_shape, shape.outputs)
    with torch.device("meta"):
        layout = describe(create_model(arch["name"], **arch["kwargs"]), arch)
    name = zoo.dataset.name
    return Population(
        zoo=zoo.name, cell=cell.id, recipe=cell.recipe, layout=layout,
        seeds=np.asarray(seeds, dtype=np.int64), diverged_epoch=np.full(len(seeds), -1),
        kept_epochs=np.array([0]), kept_weights=InitialWeights(arch, seeds),
        curves=np.full((len(seeds), 4, 1), np.nan),
        data_info={"name": name, "task": dataset_facts(name).task, "rehearsal": REHEARSAL_NOTE})


def cell_frames(pop) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics and pairs tables a rehearsed cell publishes: every metric NaN, with the real
    per-layer list lengths."""
    from phasezoo import htsr
    from phasezoo.metrics import nan_row
    from phasezoo.weights import skeleton
    from phasezoo.zoo import CELL_PAIR_COLUMNS

    blank = nan_row(len(htsr.layer_names(skeleton(pop.layout))))
    metrics = pd.DataFrame([{"model_id": pop.model_id(i), "seed": int(s), "epoch": 0, "diverged": False,
                             **blank}
                            for i, s in enumerate(pop.seeds)])
    pairs = pd.DataFrame([dict.fromkeys(CELL_PAIR_COLUMNS, math.nan)])
    return metrics, pairs


def phase_row(cell: Cell) -> dict[str, Any]:
    """The phases-table row of a rehearsed cell: its grid point, phase ``rehearsal``."""
    (t_name, t_value), (l_name, l_value) = cell.temperature, cell.load
    return {"cell": cell.id, "temperature_name": t_name, "temperature_value": float(t_value),
            "load_name": l_name, "load_value": float(l_value), "landscape_epoch": 0,
            "phase": "rehearsal",
            "margin": math.nan, "margin_rule": ""}


def _measured(name: str, fn: Callable[..., str], args: tuple, isolate: bool) -> Step:
    """Run one step, in a fresh process when ``isolate`` (so its peak is its own: PyArrow's
    memory pool and glibc keep what earlier steps freed), and time it."""
    if not isolate:
        return _timed(name, fn, args)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_timed, name, fn, args).result()


def _timed(name: str, fn: Callable[..., str], args: tuple) -> Step:
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        detail = fn(*args)
    return Step(name, time.perf_counter() - t0, mem.peak, detail)


# The file that marks a rehearsal's Arrow cache folder as its own (see _fresh_cache).
CACHE_MARKER = ".phasezoo-rehearsal-cache"


def rehearse(zoo: ZooSpec, cells: list[Cell], seeds: list[int], out: str | Path,
             say: Callable[[str], None] = print, isolate: bool = True) -> Rehearsal:
    """Publish, verify and load a zoo of the cells' initial models in ``out``; see the module.

    ``out`` gets ``zoos/<zoo>`` (the zoo), ``hf-cache/`` (the ``datasets`` Arrow cache) and
    ``rehearsal.json`` (this report); earlier contents of those are replaced. ``isolate`` runs
    every step in its own process, so each peak is the step's alone.

    Raises:
        ValueError: if a row read back through ``datasets`` differs from the shard (naming the
            row), or any step of publishing or verifying fails.
    """
    out = Path(out)
    zoo_dir, cache = out / "zoos" / zoo.name, out / "hf-cache"
    _fresh_cache(cache)
    report = Rehearsal(zoo.name, [c.id for c in cells], len(cells) * len(seeds),
                       max(_num_values(initial_population(zoo, c, seeds).layout) for c in cells))
    say(f"{zoo.name}: rehearsing {len(cells)} cell(s) × {len(seeds)} seeds, largest row "
        f"{report.row_values:,} values ({human_bytes(4 * report.row_values)}), each step in "
        f"{'its own process' if isolate else 'this process'}")
    steps = [("publish", _publish_step, (zoo, cells, seeds, out)),
             ("verify", _verify_step, (zoo_dir,)),
             ("load_dataset: build the Arrow cache", _cache_step, (zoo_dir, cache)),
             ("read every row: in memory (numpy)", _read_step, (zoo_dir, cache)),
             ("read every row: streaming=True", _stream_step, (zoo_dir,)),
             ("load_model: first row", _load_model_step, (zoo_dir, cache))]
    for name, fn, args in steps:
        step = _measured(name, fn, args, isolate)
        report.steps.append(step)
        say(f"{name}: {step.seconds:.1f} s, peak {human_bytes(step.peak_bytes)} ({step.detail})")
    report.zoo_bytes, report.arrow_cache_bytes = folder_bytes(zoo_dir), folder_bytes(cache)
    say(f"zoo on disk: {human_bytes(report.zoo_bytes)}; datasets Arrow cache: "
        f"{human_bytes(report.arrow_cache_bytes)}")
    (out / "rehearsal.json").write_text(report.to_json())
    return report


def _num_values(layout: dict) -> int:
    from phasezoo.weights import num_values

    return num_values(layout["entries"])


def _publish_step(zoo: ZooSpec, cells: list[Cell], seeds: list[int], out: Path) -> str:
    from phasezoo.zoo import publish_cells

    pops = [initial_population(zoo, c, seeds) for c in cells]
    phases = pd.DataFrame([phase_row(c) for c in cells])
    sources = ((p, *cell_frames(p), phase_row(c)) for p, c in zip(pops, cells, strict=True))
    zoo_dir = publish_cells(zoo, sources, phases, pops[0].data_info, out / "zoos",
                            note=REHEARSAL_NOTE)
    return f"{human_bytes(folder_bytes(zoo_dir))} written"


def _verify_step(zoo_dir: Path) -> str:
    from phasezoo.verify import verify

    return f"{verify(zoo_dir)} rows"


def _fresh_cache(cache: Path) -> None:
    """Empty the rehearsal's Arrow cache folder: removed only when a rehearsal made it (its
    marker file is there), so ``--out`` pointing at a folder with a user's own ``hf-cache``
    stops with one line instead of deleting it."""
    marker = cache / CACHE_MARKER
    if cache.exists() and not marker.is_file():
        raise ValueError(f"{cache}: exists and was not made by phasezoo rehearse; not removing "
                         "it (choose another --out)")
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    marker.write_text("made by phasezoo rehearse; removed and rebuilt by every rehearsal\n")


def _cache_step(zoo_dir: Path, cache: Path) -> str:
    import datasets

    ds = datasets.load_dataset(str(zoo_dir), split="train", cache_dir=str(cache))
    return f"{ds.num_rows} rows, weights {ds.features['weights']}"


def _read_step(zoo_dir: Path, cache: Path) -> str:
    """Every row's weights by index from the memory-mapped cache, compared with the shard."""
    import datasets

    ds = datasets.load_dataset(str(zoo_dir), split="train", cache_dir=str(cache))
    ds = ds.select_columns(["weights"]).with_format("numpy")
    return _ShardRows(zoo_dir).check(ds[i]["weights"] for i in range(len(ds)))


def _stream_step(zoo_dir: Path) -> str:
    import datasets

    ds = datasets.load_dataset(str(zoo_dir), split="train", streaming=True)
    return _ShardRows(zoo_dir).check(row["weights"] for row in ds.with_format("numpy"))


def _load_model_step(zoo_dir: Path, cache: Path) -> str:
    """The first row back to a module; its state_dict must hold exactly the row's values."""
    import datasets

    from phasezoo.zoo import load_model

    ds = datasets.load_dataset(str(zoo_dir), split="train", cache_dir=str(cache))
    row = ds.with_format("numpy")[0]
    model = load_model(row)
    n = sum(t.numel() for t in model.state_dict().values())
    if n != row["weights"].size:
        raise ValueError(f"load_model: the module holds {n:,} values, the row "
                         f"{row['weights'].size:,}")
    return f"{type(model).__name__} with {n:,} values"


class _ShardRows:
    """The published rows, read one at a time with h5py in the order ``datasets`` yields them
    (shards in the card's order, rows in file order): the reference a loaded row must equal."""

    def __init__(self, zoo_dir: Path) -> None:
        from phasezoo.zoo_folder import read_card_header

        header = read_card_header(zoo_dir / "README.md")
        self.files = [zoo_dir / f for f in header["configs"][0]["data_files"][0]["path"]]

    def rows(self) -> Iterator[np.ndarray]:
        import h5py

        for path in self.files:
            with h5py.File(path, "r") as f:
                for i in range(f["weights"].shape[0]):
                    yield f["weights"][i]

    def check(self, loaded: Iterator[np.ndarray]) -> str:
        """``"N rows bit-identical"``, or ValueError naming the first row that differs."""
        n = 0
        for want, got in zip(self.rows(), loaded, strict=True):
            got = np.asarray(got)
            if got.dtype != np.float32 or not np.array_equal(want.view(np.uint32),
                                                             got.view(np.uint32)):
                raise ValueError(f"row {n}: weights read through datasets differ from the "
                                 f"shard ({got.dtype}, {got.size} values)")
            n += 1
            del want, got  # one row of each side in memory
        return f"{n} rows bit-identical"
