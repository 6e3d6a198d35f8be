"""What a zoo costs before it runs: models, parameters, FLOPs and a GPU-hour estimate.

Parameters and forward FLOPs are exact: every load value's architecture is built on the ``meta``
device (no memory, no data) and one sample's forward is counted by torch's ``FlopCounterMode``
(matmuls and convolutions, 2 FLOPs per multiply-add). The GPU time is a **cost model**, not a
measurement: each training step takes the longer of its FLOPs at :data:`GPU_FLOPS` and its kernel
launches (:data:`KERNELS_PER_MODULE` per leaf module, :data:`LAUNCH_S` each: small models at
small batches are launch-bound), plus the per-epoch train/test evaluation and the measure stage
(Hessian HVPs, with a second Lanczos run where λmax is on test data, the curves of the seed
pairs ``metrics.max_pairs`` selects, the CKA of those ``cka_max_pairs`` selects). Calibrate the two constants on your GPU before planning a cluster
allocation.

Data sizes come from the config and the datasets' own defaults. A text corpus is measured when it
is offline (pydoc, local files); a hub corpus is only streamed when the zoo trains, so it is taken
as ``max_bytes`` long and the table marks the figures that rest on it as upper bounds (≤).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, NamedTuple

import torch

from phasezoo.config import Cell, ZooSpec
from phasezoo.dataset_facts import dataset_facts
from phasezoo.jobs import stackable
from phasezoo.memory import human_bytes
from phasezoo.model_sizes import data_io
from phasezoo.settings import DatasetSettings
from phasezoo.sources import HUB_PREFIX
from phasezoo.task_kinds import task_kind

GPU_FLOPS = 20e12        # sustained fp32/TF32 FLOP/s of one H100-class GPU on these small models
LAUNCH_S = 20e-6         # one kernel launch in eager PyTorch
# The CPU machine (`phasezoo estimate --machine cpu`): this project's 2-core x86 machines. The
# FLOP rate is the stacked trainer's measured effective rate, the population benchmark's roofline
# fraction (~0.2, benchmarks/train_population.py) of the 179 GFLOP/s a large float32 GEMM
# reaches here; an eager op costs ~10 µs of dispatch; every job process pays ~2 s to import
# torch (docs/performance.md).
CPU_FLOPS = 36e9
CPU_OP_S = 10e-6
CPU_CORES = 2
JOB_STARTUP_S = 2.0
KERNELS_PER_MODULE = 10  # forward, backward and SGD update kernels per leaf module and step
TRAIN_FLOPS_FACTOR = 3   # forward + backward ≈ 3 forwards
# A published row's bytes beyond its weights and layout (its scalar, string and list columns),
# a shard's fixed bytes (HDF5 headers, its SHA256SUMS line), the card's, and the Arrow cache
# folder's fixed bytes; measured on zoos rehearsed with 2 and 40 rows per cell (shard layout 2,
# datasets 5.2). tests/test_rehearsal.py checks the estimate against a rehearsed ResNet-50 zoo.
HDF5_ROW_BYTES, HDF5_SHARD_BYTES, CARD_BYTES = 1_200, 25_100, 10_000
ARROW_ROW_BYTES, ARROW_CACHE_BYTES = 520, 19_000
DATA_ROOT = "data"  # the schema's default data_root


@dataclass(frozen=True)
class Machine:
    """What the cost model assumes of the machine: its sustained FLOP/s, the cost of one kernel
    launch (GPU) or op dispatch (CPU), the jobs it runs side by side and a job's start-up."""

    name: str
    flops: float
    launch_s: float
    cores: int = 1
    startup_s: float = 0.0


def machine(name: str = "gpu", cores: int = CPU_CORES) -> Machine:
    """``gpu`` (one H100-class GPU, jobs one after another) or ``cpu`` (``cores`` jobs side by
    side, one core each). Read at call time, so a recalibrated constant takes effect."""
    if name == "gpu":
        return Machine("GPU", GPU_FLOPS, LAUNCH_S)
    if name == "cpu":
        return Machine("CPU", CPU_FLOPS / CPU_CORES, CPU_OP_S, cores, JOB_STARTUP_S)
    raise ValueError(f"--machine {name}: not a machine; machines are gpu, cpu")


@dataclass
class ZooCost:
    """One zoo's size and estimated cost."""

    zoo: str
    model: str
    dataset: str
    cells: int
    models: int
    checkpoints: int
    min_parameters: int
    max_parameters: int
    train_pflop: float
    gpu_hours: float
    slowest_cell_hours: float  # the longest train job (all seeds of one cell)
    slowest_measure_hours: float  # the longest measure job
    zoo_bytes: int  # the published HDF5 shards
    arrow_cache_bytes: int  # the cache ``datasets.load_dataset`` builds from them
    # False when the data size is only bounded (a hub corpus taken as max_bytes long): the
    # FLOPs and hours are then upper bounds.
    exact_data: bool = True
    machine: str = "GPU"
    # The train and measure jobs' wall time on the machine's cores, start-ups included.
    wall_hours: float = 0.0


@dataclass(frozen=True)
class DataShape:
    """What the cost model needs of a zoo's data, known without loading it."""

    input_shape: tuple[int, ...]
    dtype: torch.dtype
    outputs: int
    n_train: int
    n_test: int
    exact: bool = True  # False: n_train and n_test are upper bounds


def data_shape(zoo: ZooSpec, data_root: str | Path = DATA_ROOT) -> DataShape:
    """Input shape, dtype, outputs and train/test sizes of a zoo's data, from its config (the
    dataset's task kind says how: token sequences, PDE points or images); a local text corpus
    is measured under ``data_root``, where the dataset reads it."""
    d = zoo.dataset
    facts = dataset_facts(d.name)
    inputs = task_kind(facts.task).inputs
    shape, outputs = data_io(d.name, d.image_size, d.channels, d.options)
    if inputs == "tokens":
        n_train, n_test, exact = text_sizes(_with_defaults(d.name, d.options), data_root)
        return DataShape(shape, torch.long, outputs, *_capped(d, (n_train, n_test)), exact)
    if inputs == "points":
        opts = _with_defaults(d.name, d.options)
        n = sum(int(opts[k]) for k in ("n_residual", "n_initial", "n_boundary"))
        return DataShape(shape, torch.float32, outputs,
                         *_capped(d, (n, int(opts["grid_x"]) * int(opts["grid_t"]))))
    return DataShape(shape, torch.float32, outputs, *_capped(d, facts.sizes))


def _capped(d: DatasetSettings, sizes: tuple[int, int]) -> tuple[int, int]:
    """The sizes after the config's ``train_size``/``test_size`` caps (as ``cell_split``)."""
    return (min(sizes[0], d.train_size or sizes[0]), min(sizes[1], d.test_size or sizes[1]))


def _with_defaults(name: str, options: Mapping) -> dict:
    """A generated or text dataset's options over the defaults of its registered function, so
    the estimate reads the same defaults as the dataset (not a copy of them)."""
    import inspect

    from phasezoo.data import dataset_fn

    defaults = {k: p.default for k, p in inspect.signature(dataset_fn(name)).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return defaults | dict(options)


def text_sizes(opts: dict, data_root: str | Path = DATA_ROOT) -> tuple[int, int, bool]:
    """(train sequences, test sequences, exact) of a ``text`` dataset with options ``opts``.

    The split is :func:`phasezoo.data.corpora.text`'s, repeated here because that function only
    computes it after reading the corpus: ``n_seq = bytes // (seq_len + 1)``, the last
    ``max(1, round(test_fraction · n_seq))`` sequences as test. The corpus length is exact for
    the offline sources (the pydoc topics, local files: read here); a hub corpus is streamed
    only when the zoo trains, so it is taken as ``max_bytes`` long and the sizes are upper bounds.

    Raises:
        ValueError: if the corpus makes fewer than two sequences (as the dataset itself would).
    """
    n_bytes, exact = corpus_bytes(str(opts["source"]), int(opts["max_bytes"]), data_root)
    seq = int(opts["seq_len"])
    n_seq = n_bytes // (seq + 1)
    n_test = max(1, round(float(opts["test_fraction"]) * n_seq))
    if n_seq - n_test < 1:
        raise ValueError(f"estimate: dataset 'text' ({opts['source']}): {n_bytes} bytes make "
                         f"{n_seq} sequences of {seq + 1}; need at least 2")
    return n_seq - n_test, n_test, exact


def corpus_bytes(source: str, max_bytes: int,
                 data_root: str | Path = DATA_ROOT) -> tuple[int, bool]:
    """(length in bytes, exact) of a ``text`` source's corpus as the dataset would cut it
    (a local source lies under ``data_root``, and at most ``max_bytes`` of it is read)."""
    if source == "openwebtext" or source.startswith(HUB_PREFIX):
        return max_bytes, False
    from phasezoo.data.corpora import _corpus_bytes

    try:  # offline sources: the pydoc topics or local files
        return len(_corpus_bytes(Path(data_root), source, max_bytes)[0]), True
    except FileNotFoundError:  # a local corpus not on this machine: max_bytes bounds it
        return max_bytes, False


class Architecture(NamedTuple):
    """What the estimate needs of one width's model, measured on the ``meta`` device."""

    parameters: int
    flops: float  # forward FLOPs of one sample
    leaves: int  # leaf modules (kernel launches per step scale with them)
    stacked: bool  # the cell's seeds train as one stacked model
    values: int  # a zoo row's weights: the whole state_dict (parameters and buffers)
    row_metadata_bytes: int  # the row's layout JSON and per-layer HT-SR lists


def architecture_cost(zoo: ZooSpec, width: int) -> Architecture:
    """The zoo's model at ``width``: parameters, forward FLOPs, leaves, stacking, and the size of
    a published row (weights and the metadata that scales with the architecture)."""
    from torch.utils.flop_counter import FlopCounterMode

    from phasezoo.htsr import layer_names
    from phasezoo.metrics import HTSR_LAYER_COLUMNS
    from phasezoo.models import architecture_spec, create_model
    from phasezoo.stacked_layers import unsupported_modules
    from phasezoo.weights import describe
    from phasezoo.zoo import row_layout

    data = data_shape(zoo)
    arch = architecture_spec(replace(zoo.model, width=width), data.input_shape, data.outputs)
    with torch.device("meta"):
        model = create_model(arch["name"], **arch["kwargs"])
        x = torch.zeros(1, *data.input_shape, dtype=data.dtype)
        with FlopCounterMode(display=False) as counter:
            model(x)
    leaves = sum(1 for m in model.modules() if not list(m.children()))
    stacked = (zoo.train.vectorize and not unsupported_modules(model)
               and stackable(zoo.dataset.name))
    layout = row_layout(describe(model, arch), model)  # exactly what a published row holds
    return Architecture(
        parameters=sum(p.numel() for p in model.parameters()),
        flops=float(counter.get_total_flops()), leaves=leaves, stacked=stacked,
        values=sum(t.numel() for t in model.state_dict().values()),
        row_metadata_bytes=(len(layout.encode())
                            + 8 * len(HTSR_LAYER_COLUMNS) * len(layer_names(model))))


def estimate(zoo: ZooSpec, data_root: str | Path = DATA_ROOT,
             on: Machine | None = None) -> ZooCost:
    """Size and cost-model hours of every model of ``zoo`` (train + measure stages) on machine
    ``on`` (default: one GPU); ``data_root`` is the config's, where a local text corpus lies."""
    from phasezoo.jobs import train_groups
    from phasezoo.landscape.pairs import seed_pairs
    from phasezoo.protocols import curve_epochs

    on = on or machine("gpu")

    data = data_shape(zoo, data_root)
    n_train, n_test = data.n_train, data.n_test
    widths = ([int(v) for v in zoo.load.values] if zoo.load.name == "width"
              else [int(zoo.model.width)])
    arch = {w: architecture_cost(zoo, w) for w in widths}
    train, metrics, seeds = zoo.train, zoo.metrics, len(zoo.seeds)
    # A PINN's loss differentiates the network w.r.t. its inputs, then backward goes through
    # that: a multiple of a plain forward + backward's FLOPs (its task kind's factor).
    factor = task_kind(dataset_facts(zoo.dataset.name).task).input_derivative_factor
    seconds = flops_total = slowest = slowest_measure = 0.0
    for cell in zoo.cells():
        recipe = cell.recipe
        a = arch[recipe.model.width]
        fwd, leaves, stacked = a.flops, a.leaves, a.stacked
        fraction = recipe.train.data_fraction
        n = max(1, round(fraction * n_train))
        steps = train.epochs * math.ceil(n / recipe.train.batch_size)
        train_flops = factor * TRAIN_FLOPS_FACTOR * fwd * n * train.epochs
        launches = steps * leaves * KERNELS_PER_MODULE * on.launch_s
        # A stacked cell launches each kernel once for all its seeds (phasezoo.stacked).
        step_time = (max(seeds * train_flops / on.flops, launches) / seeds if stacked
                     else max(train_flops / on.flops, launches))
        eval_flops = fwd * (n + n_test) * (train.epochs + 1)
        # λmax's Lanczos run and the trace's probes (each at most hessian_max_iter HVPs), plus a
        # second Lanczos run when λmax is on other data than the trace (hessian_top_data: test)
        hessian_runs = 3 if metrics.hessian_top_data == "test" else 2
        hessian_flops = (4 * fwd * hessian_runs * metrics.hessian_max_iter
                         * metrics.hessian_batches * metrics.hessian_batch_size)
        # the topological profile: two eigenvectors and steps² loss passes, at one epoch
        topo_flops = (metrics.topology * (4 * fwd * 2 * metrics.topology_max_iter
                                          + fwd * metrics.topology_steps ** 2)
                      * metrics.hessian_batches * metrics.hessian_batch_size)
        kept = len(train.keep_epochs)
        pairs = len(seed_pairs(seeds, metrics.max_pairs))  # the curves the measure stage runs
        # CKA (its own pairs, cka_max_pairs): both members' forward passes over the CKA sample
        cka_flops = (2 * fwd * metrics.cka_batches * metrics.cka_batch_size
                     * len(seed_pairs(seeds, metrics.cka_max_pairs)))
        # each path point: a BatchNorm recompute pass and an evaluation pass over the train set
        # the curve's epochs at this cell's data fraction (mc_epochs_rule: LLT scales them)
        mc_epochs = curve_epochs(metrics.mc_epochs, metrics.mc_epochs_rule, fraction)
        pair_flops = (TRAIN_FLOPS_FACTOR * mc_epochs
                      + 2 * (metrics.interpolation_points + metrics.mc_points)) * fwd * n
        measure = (seeds * kept * (factor * hessian_flops + fwd * (n + n_test))
                   + seeds * factor * topo_flops
                   + pairs * factor * pair_flops + cka_flops) / on.flops
        slowest = max(slowest, seeds * (step_time + factor * eval_flops / on.flops))
        slowest_measure = max(slowest_measure, measure)
        seconds += seeds * (step_time + factor * eval_flops / on.flops) + measure
        flops_total += seeds * train_flops
    n_cells = len(zoo.cells())
    jobs = len(train_groups(zoo)) + n_cells  # train jobs (one per group) and measure jobs
    wall = (seconds + jobs * on.startup_s) / on.cores
    return ZooCost(zoo.name, zoo.model.name, zoo.dataset.name, n_cells,
                   n_cells * seeds, n_cells * seeds * len(train.keep_epochs),
                   min(a.parameters for a in arch.values()),
                   max(a.parameters for a in arch.values()),
                   flops_total / 1e15, seconds / 3600, slowest / 3600, slowest_measure / 3600,
                   *published_bytes(zoo, arch, rows_per_cell=seeds * len(train.keep_epochs)),
                   data.exact, on.name, wall / 3600)


def published_bytes(zoo: ZooSpec, arch: dict[int, Architecture], rows_per_cell: int,
                    cells: list[Cell] | None = None) -> tuple[int, int]:
    """(zoo bytes, Arrow cache bytes) of the published ``cells`` (default: all): one shard per
    cell, one row per model × kept checkpoint; ``arch`` maps each width to its
    :func:`architecture_cost`."""
    hdf5, arrow = CARD_BYTES, ARROW_CACHE_BYTES
    for cell in zoo.cells() if cells is None else cells:
        a = arch[cell.recipe.model.width]
        row = 4 * a.values + a.row_metadata_bytes
        hdf5 += HDF5_SHARD_BYTES + rows_per_cell * (row + HDF5_ROW_BYTES)
        arrow += rows_per_cell * (row + ARROW_ROW_BYTES)
    return hdf5, arrow


UPPER_BOUND = "≤ "
UPPER_BOUND_NOTE = ("≤: upper bound. The zoo's text corpus is streamed from the hub (or is not on "
                    "this machine) when the zoo trains, so it is taken as `max_bytes` long.")


def markdown(costs: list[ZooCost]) -> str:
    """The catalogue table (docs/catalogue.md); figures that rest on an assumed data size are
    marked ≤ and explained under the table."""
    m = costs[0].machine if costs else "GPU"
    wall = m != "GPU"  # a CPU's jobs run side by side: their wall time, start-ups included
    lines = ["| zoo | model | data | cells | models | checkpoints | parameters | train PFLOP "
             f"| {m}-hours (est.) | slowest cell ({m}-h, est.) | "
             + ("train + measure wall (est.) | " if wall else "")
             + "published (HDF5) | Arrow cache |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if wall else "")]
    for c in costs:
        params = (_human(c.min_parameters) if c.min_parameters == c.max_parameters
                  else f"{_human(c.min_parameters)}–{_human(c.max_parameters)}")
        bound = "" if c.exact_data else UPPER_BOUND
        lines.append(f"| {c.zoo} | {c.model} | {c.dataset} | {c.cells} | {c.models} | "
                     f"{c.checkpoints} | {params} | {bound}{_num(c.train_pflop)} | "
                     f"{bound}{_num(c.gpu_hours)} | {bound}{_num(c.slowest_cell_hours)} | "
                     + (f"{bound}{c.wall_hours * 60:.0f} min | " if wall else "")
                     + f"{human_bytes(c.zoo_bytes)} | {human_bytes(c.arrow_cache_bytes)} |")
    if not all(c.exact_data for c in costs):
        lines += ["", UPPER_BOUND_NOTE]
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _human(n: int) -> str:
    """``n`` to 3 significant digits with a k/M/G suffix. The unit is chosen after rounding, so
    999,600 is ``1M``, not ``1e+03k``."""
    if n < 1000:
        return str(n)
    for unit, size in (("k", 1e3), ("M", 1e6)):
        rounded = float(f"{n / size:.3g}")
        if rounded < 1000:
            return f"{rounded:g}{unit}"
    rounded = float(f"{n / 1e9:.3g}")
    return f"{rounded:g}G" if rounded < 1000 else f"{n / 1e9:,.0f}G"
