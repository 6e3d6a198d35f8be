"""The zoo catalogue (config/zoos/): 12 full-size configs, each with a CPU-sized twin that runs
end to end here and publishes a zoo that ``datasets.load_dataset`` reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phasezoo.config import load_config
from phasezoo_testkit import DATA_ROOT
from phasezoo_testkit import REPO, dag_env

ZOOS = REPO / "config" / "zoos"
FULL = sorted(p for p in ZOOS.glob("*.yaml") if not p.stem.endswith("-mini"))
CATALOGUE = {  # zoo: (model, dataset, load axis, temperature axis)
    **{f"{a}-{d}": (a, d, "width", "batch_size") for a in ("resnet18", "resnet50")
       for d in ("svhn", "cifar10", "cifar100", "tinyimagenet")},
    "vit-cifar10": ("vit", "cifar10", "width", "batch_size"),
    "vit-cifar100": ("vit", "cifar100", "width", "batch_size"),
    "gpt-openwebtext": ("gpt", "text", "width", "batch_size"),
    "pinn-convection": ("pinn-mlp", "convection", "beta", "lr"),
}


# The benchmark (with its learned baselines) and the studies (three regimes included) run on
# every twin; the diagnosis on the two task kinds no other test takes through the DAG (the
# default zoo's classification reports are tested in test_workflow).
DOWNSTREAM = ("gpt-openwebtext-mini", "pinn-convection-mini")
LEARNED_METHOD = "neuron_sets"  # the learned baseline for every architecture (wsl.neuron_sets)


def _scored_methods(bench: dict) -> set[str]:
    """The baselines with at least one finite score in a benchmark.json's summary."""
    return {e["baseline"] for e in bench["summary"]
            if any(isinstance(v, dict) and v.get("mean") == v.get("mean") for v in e.values())}


PTMZ_MODELS = {"resnet18": 192, "resnet50": 192, "vit": 147, "gpt": 264, "pinn-mlp": 700}


def _zoo(path: Path):
    (zoo,) = load_config(path).zoos.values()
    return zoo


def test_the_catalogue_has_its_twelve_zoos():
    assert {p.stem for p in FULL} == set(CATALOGUE)
    for path in FULL:
        zoo = _zoo(path)
        model, dataset, load, temperature = CATALOGUE[path.stem]
        assert zoo.name == path.stem and zoo.model.name == model
        assert zoo.dataset.name == dataset
        assert (zoo.load.name, zoo.temperature.name) == (load, temperature)
        # PTMZ's README: 192 models per ResNet zoo, 147 per ViT zoo, 264 GPT-2, 700 PINN
        assert len(zoo.cells()) * len(zoo.seeds) == PTMZ_MODELS[model] and zoo.resources.gpu
        assert min(zoo.resources.runtime.values()) >= 240


def test_resnet_zoos_follow_the_reference_recipe():
    for path in FULL:
        if not path.stem.startswith("resnet"):
            continue
        zoo = _zoo(path)
        t = zoo.train
        assert (t.lr, t.momentum, t.weight_decay, t.schedule) == (0.1, 0.9, 5e-4, "onecycle")
        assert t.epochs == (100 if "tinyimagenet" in path.stem else 150)
        assert t.augment == {"crop": 4, "flip": "svhn" not in path.stem, "rotation": 20}
        assert list(zoo.load.values) == [2, 4, 8, 16, 32, 64, 128, 256]
        assert list(zoo.temperature.values) == [8, 16, 32, 64, 128, 256, 512, 1024]


def test_vit_zoos_take_the_grid_of_ptmz_published_metrics():
    for name in ("vit-cifar10", "vit-cifar100"):
        zoo = _zoo(ZOOS / f"{name}.yaml")
        assert list(zoo.load.values) == [6, 12, 24, 48, 60, 96, 192]
        assert list(zoo.temperature.values) == [8, 16, 32, 64, 128, 256, 512]
        assert zoo.train.epochs == 300 and len(zoo.seeds) == 3


def test_every_twin_keeps_the_architecture_and_axes_on_a_small_grid():
    for path in FULL:
        full, mini = _zoo(path), _zoo(ZOOS / f"{path.stem}-mini.yaml")
        assert mini.name == f"{full.name}-mini"
        assert mini.model == full.model
        assert (mini.load.name, mini.temperature.name) == (full.load.name, full.temperature.name)
        assert len(mini.temperature.values) == len(mini.load.values) == 2
        assert len(mini.seeds) == 2 and mini.train.epochs <= 3
        assert not mini.resources.gpu


def test_full_configs_build_their_dags(tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "-n", "--quiet", "rules", "--configfiles", *map(str, FULL)]
    proc = subprocess.run(cmd, cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = dict(line.split() for line in (proc.stdout + proc.stderr).splitlines()
                  if len(line.split()) == 2 and line.split()[1].isdigit())
    cells = sum(len(_zoo(p).cells()) for p in FULL)
    assert counts["train"] == counts["measure"] == str(cells) == str(8 * 64 + 2 * 49 + 88 + 70)
    assert counts["publish"] == counts["benchmark"] == counts["studies"] == "12"
    assert counts["diagnose"] == "12"
    assert counts["benchmark_transfer"] == str(4 * 3 + 4 * 3 + 2)  # ordered same-model pairs


@pytest.mark.slow
def test_every_twin_runs_end_to_end_and_publishes_a_loadable_zoo(tmp_path):
    zoos = {}
    for path in sorted(ZOOS.glob("*-mini.yaml")):
        zoos |= yaml.safe_load(path.read_text())["zoos"]
    config = tmp_path / "minis.yaml"
    config.write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"), "transfer_benchmark": False,
                                      "zoos_dir": str(tmp_path / "zoos"),
                                      "data_root": str(DATA_ROOT), "device": "cpu", "zoos": zoos}))
    # Every twin is trained, measured, labelled, published, benchmarked and studied.
    downstream = ([tmp_path / "results" / z / f"{report}.json" for z in zoos
                   for report in ("benchmark", "studies")]
                  + [tmp_path / "results" / z / "diagnosis.json" for z in DOWNSTREAM])
    targets = [tmp_path / "zoos" / f".{z}.verified" for z in zoos] + downstream
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(config), "-c2", "--quiet", "--", *map(str, targets)]
    proc = subprocess.run(cmd, cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(zoos) == 12
    load = ("import sys, json, datasets\n"
            "for path in sys.argv[1:]:\n"
            "    ds = datasets.load_dataset(path, split='train')\n"
            "    print(json.dumps({'n': len(ds), 'phases': sorted(set(ds['phase'])),\n"
            "                      'acc': [float(a) for a in ds['test_accuracy']]}))\n")
    out = subprocess.run([sys.executable, "-c", load, *[str(tmp_path / "zoos" / z) for z in zoos]],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    for name, line in zip(zoos, out, strict=True):
        row = json.loads(line)
        assert row["n"] == 4 * 2 * 2, name  # cells × seeds × kept epochs
        assert set(row["phases"]) <= {"I", "II", "III", "IV-A", "IV-B", "diverged"}, name
        if name.startswith("pinn"):  # relative L2 error: ≥ 0, ~1 for an untrained PINN
            assert all(0 <= a < 10 for a in row["acc"]), name
        else:
            assert all(0 <= a <= 1 for a in row["acc"]), name
        verify = subprocess.run(["phasezoo", "verify", str(tmp_path / "zoos" / name)],
                                env=dag_env(), capture_output=True, text=True)
        assert verify.returncode == 0 and "OK, 16 rows" in verify.stdout, verify.stderr
        results = tmp_path / "results" / name
        bench = json.loads((results / "benchmark.json").read_text())
        assert bench["summary"], name
        assert LEARNED_METHOD in _scored_methods(bench), (name, bench.get("skipped_baselines"))
        studies = json.loads((results / "studies.json").read_text())
        assert studies["cells"], name
        points = studies["regimes"].get("points", [])
        assert points and all(p["regime"] for p in points), (name, studies["regimes"])
        if name in DOWNSTREAM:
            assert json.loads((results / "diagnosis.json").read_text())["tasks"], name
    card = (tmp_path / "zoos" / "pinn-convection-mini" / "README.md").read_text()
    assert "relative L2 error" in card
