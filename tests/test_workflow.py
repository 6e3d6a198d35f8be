"""End to end: the Snakemake DAG on the tiny test config, then `datasets.load_dataset`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from phasezoo_testkit import DATA_ROOT
from phasezoo_testkit import REPO, dag_env, run_dag







@pytest.mark.slow
def test_snakemake_dag_publishes_a_loadable_zoo(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    raw |= {"results_dir": str(tmp_path / "results"), "zoos_dir": str(tmp_path / "zoos"),
            "data_root": str(DATA_ROOT)}
    config = tmp_path / "test.yaml"
    cmd = run_dag(raw, config)
    zoo = tmp_path / "zoos" / "tiny"
    assert not (tmp_path / "zoos" / "mnist-mlp").exists()  # --configfile replaces the default
    assert sorted(p.name.rsplit("-", 1)[0] for p in (zoo / "data").glob("*.h5")) == sorted(
        f"batch_size-{b}_width-{w}" for b in (64, 1024) for w in (4, 16))
    # A process that never imports phasezoo: only datasets (and its HDF5 builder's h5py).
    load = ("import sys, datasets; ds = datasets.load_dataset(sys.argv[1], split='train'); "
            "assert 'phasezoo' not in sys.modules; print(len(ds), len(ds[0]['weights']))")
    out = subprocess.run([sys.executable, "-c", load, str(zoo)], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) == 4 * 2 * 2  # cells × seeds × kept epochs
    assert int(out[1]) > 0
    verify = subprocess.run(["phasezoo", "verify", str(zoo)], env=dag_env(), capture_output=True,
                            text=True)
    assert verify.returncode == 0 and "OK, 16 rows" in verify.stdout
    # The WSL benchmark ran on the published zoo, read back through datasets.
    bench = json.loads((tmp_path / "results" / "tiny" / "benchmark.json").read_text())
    assert bench["zoo"] == ["tiny"] and bench["n_checkpoints"] == 16 and bench["summary"]
    assert (tmp_path / "results" / "tiny" / "benchmark.png").stat().st_size > 0
    studies = json.loads((tmp_path / "results" / "tiny" / "studies.json").read_text())
    assert len(studies["cells"]) == 4 and studies["per_phase"]
    assert (tmp_path / "results" / "tiny" / "studies.png").stat().st_size > 0
    # The diagnosis read the published zoo: every cell labelled for both of its grid's tasks.
    diag = json.loads((tmp_path / "results" / "tiny" / "diagnosis.json").read_text())
    assert diag["subject"] == "tiny" and diag["tasks"] == ["bs_failure", "width_vs_batch"]
    assert all(sum(c.values()) == 4 for c in diag["labels"].values())
    assert {e["method"] for e in diag["entries"]} >= {"md_tree", "hyper+dt", "htsr+dt"}
    # Run again: nothing to do (every output is complete and up to date).
    dry = subprocess.run(cmd + ["-n"], cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # A width added to the grid (and the description and an axis's plot spacing changed): only
    # the two new cells train and are measured.
    raw["zoos"]["tiny"]["load"]["values"].append(32)
    raw["zoos"]["tiny"]["load"]["log2"] = False
    raw["zoos"]["tiny"]["description"] = "a changed description"
    config.write_text(yaml.safe_dump(raw))
    counts = _planned_jobs(cmd, ("fetch", "train", "measure"))
    assert counts == {"train": 2, "measure": 2}  # no refetch either
    # Another metric protocol: every cell is measured again, nothing retrains.
    raw["zoos"]["tiny"]["load"]["values"].pop()
    raw["zoos"]["tiny"]["metrics"]["protocol"] = "llt"
    config.write_text(yaml.safe_dump(raw))
    assert _planned_jobs(cmd, ("train", "measure", "publish")) == {"measure": 4, "publish": 1}
    # A damaged intermediate deleted, as its error message says: that cell is rebuilt, and the
    # zoo after it, not left as a hole behind an up-to-date zoo.
    del raw["zoos"]["tiny"]["metrics"]["protocol"]
    config.write_text(yaml.safe_dump(raw))
    (tmp_path / "results" / "tiny" / "batch_size-64_width-4" / "train.h5").unlink()
    assert _planned_jobs(cmd, ("train", "measure", "publish")) == {
        "train": 1, "measure": 1, "publish": 1}


def _planned_jobs(cmd: list[str], rules: tuple[str, ...]) -> dict[str, int]:
    """The job-stats table ("<rule> <count>") of a dry run, for ``rules``."""
    dry = subprocess.run([c for c in cmd if c != "--quiet"] + ["-n"], cwd=REPO, env=dag_env(),
                         capture_output=True, text=True)
    rows = [line.split() for line in (dry.stdout + dry.stderr).splitlines()]
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit() and r[0] in rules}


@pytest.mark.slow
def test_snakemake_rejects_a_bad_config_before_running(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("zoos:\n  x:\n    temperature: {name: batch_size, values: [8]}\n"
                      "    load: {name: width, values: [2]}\n    train: {epochs: -3}\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(config), "-c1"],
                          cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert proc.returncode != 0
    assert "zoos.x.train.epochs: -3 is less than the minimum of 1" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
    # Snakemake's own loader keeps the last of two `train:` keys; the workflow refuses them
    base = (REPO / "config" / "test.yaml").read_text()
    first = base.splitlines().index("    train: {epochs: 2, keep_epochs: [0, 2], lr: 0.05}") + 1
    config.write_text(base + "    train: {epochs: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(config), "-n"],
                          cwd=REPO, env=dag_env(), capture_output=True, text=True)
    assert proc.returncode != 0
    assert (f"line {len(base.splitlines()) + 1}, column 5: invalid YAML: duplicate key 'train' "
            f"(first on line {first})") in (
        proc.stdout + proc.stderr)


def _kill_config(tmp_path: Path, name: str) -> Path:
    """One cell trained long enough (30 epochs of batch 16) to be killed in the middle."""
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    zoo = raw["zoos"]["tiny"]
    zoo |= {"temperature": {"name": "batch_size", "values": [16]},
            "load": {"name": "width", "values": [16]},
            "train": {"epochs": 30, "keep_epochs": [0, 15, 30], "lr": 0.01}}
    raw |= {"results_dir": str(tmp_path / name / "results"), "zoos_dir": str(tmp_path / name / "zoos"),
            "data_root": str(DATA_ROOT)}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


def _zoo_rows(zoo: Path) -> dict[str, list[np.ndarray]]:
    """Every column of the zoo's single shard, one array per row (weights, lists and scalars)."""
    import h5py

    (shard,) = (zoo / "data").glob("*.h5")
    with h5py.File(shard) as f:
        return {k: [np.asarray(v) for v in f[k][:]] for k in f}


@pytest.mark.slow
def test_sigkilled_training_resumes_to_the_same_zoo(tmp_path):
    """SIGKILL the whole Snakemake run while a train job is mid-way, run it again: the zoo is the
    one an uninterrupted run publishes (the job resumes from train.h5.partial)."""
    import signal
    import time

    def snakemake(config: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                str(tmp_path), "--configfile", str(config), "-c1", "--quiet", *extra]

    reference = _kill_config(tmp_path, "uninterrupted")
    subprocess.run(snakemake(reference), cwd=REPO, env=dag_env(), check=True, capture_output=True)

    config = _kill_config(tmp_path, "killed")
    cell_dir = tmp_path / "killed" / "results" / "tiny" / "batch_size-16_width-16"
    proc = subprocess.Popen(snakemake(config), cwd=REPO, env=dag_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (cell_dir / "train.h5.partial").exists() and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its train job, at once
    proc.wait()
    assert (cell_dir / "train.h5.partial").exists() and not (cell_dir / "train.h5").exists()

    blocked = subprocess.run(snakemake(config), cwd=REPO, env=dag_env(), capture_output=True,
                             text=True)
    assert blocked.returncode != 0 and "LockException" in blocked.stdout + blocked.stderr
    # the README's recovery step: remove the stale lock (no Snakemake runs here), run again
    unlock = subprocess.run([sys.executable, str(REPO / "workflow" / "scripts" / "unlock.py"),
                             str(tmp_path), "--configfile", str(config)], env=dag_env(),
                            capture_output=True, text=True)
    assert unlock.returncode == 0 and "removed the stale lock" in unlock.stdout, unlock.stderr
    subprocess.run(snakemake(config), cwd=REPO, env=dag_env(), check=True, capture_output=True)
    assert not (cell_dir / "train.h5.partial").exists()
    assert "resum" in (tmp_path / "logs" / "tiny" / "batch_size-16_width-16" / "train.log").read_text()
    a = _zoo_rows(tmp_path / "uninterrupted" / "zoos" / "tiny")
    b = _zoo_rows(tmp_path / "killed" / "zoos" / "tiny")
    assert a.keys() == b.keys()
    for column in a:
        for x, y in zip(a[column], b[column], strict=True):
            numeric = x.dtype.kind in "fc"
            assert np.array_equal(x, y, equal_nan=numeric), column


def test_unlock_refuses_while_a_snakemake_runs_in_the_folder(tmp_path):
    import time

    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("a lock\n")
    script = str(REPO / "workflow" / "scripts" / "unlock.py")
    running = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        deadline = time.time() + 5  # until bash has exec'd into "snakemake"
        while ("snakemake" not in Path(f"/proc/{running.pid}/cmdline").read_text()
               and time.time() < deadline):
            time.sleep(0.05)
        proc = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True,
                              text=True)
    finally:
        running.kill()
        running.wait()
    assert proc.returncode == 1 and f"Snakemake is running here (pid {running.pid})" in proc.stderr
    assert (locks / "0.input.lock").exists()
