"""The conda environment and pyproject pin the same packages; the schema link resolves; the
config page is the schema's; the wheel carries the workflow and runs it outside a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from phasezoo.config_checks import schema

REPO = Path(__file__).resolve().parents[1]


def test_conda_env_pins_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "phasezoo.yaml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert sorted(p for p in pip if "==" in p) == sorted(project)


def test_workflow_schema_is_the_package_schema():
    linked = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert linked == schema()


def test_every_schema_key_has_description_and_default():
    """A key's default is in the schema, or (a metric protocol's key) in phasezoo.protocols,
    which its description then names."""
    from phasezoo.protocols import PHASE_THRESHOLDS, PROTOCOL_KEYS

    by_protocol = set(PROTOCOL_KEYS) | set(PHASE_THRESHOLDS["ptmz"])

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            if key in ("temperature", "load"):
                continue  # required axes: no default by design
            assert "description" in sub, f"{path}.{key}"
            if key in by_protocol and path in ("metrics", "phases"):
                assert "default" not in sub and sub["description"].startswith("Protocol ("), key
            else:
                assert "default" in sub, f"{path}.{key}"
            walk(sub, f"{path}.{key}")
    s = schema()
    walk(s, "config")
    for name in ("zoo", "train", "metrics", "phases", "resources", "stage_mem_mb", "stage_runtime"):
        walk(s["$defs"][name], name)


def test_format_doc_lists_every_column():
    from phasezoo.card import COLUMN_DOCS

    doc = (REPO / "datasets_card.md").read_text()
    missing = [c for c in COLUMN_DOCS if f"`{c}`" not in doc]
    assert not missing


def test_the_tests_use_a_cache_of_their_own():
    """conftest points the Hugging Face cache at a fresh folder of this run's, not the user's."""
    import datasets.config

    home = os.environ["HF_HOME"]
    assert Path(home).name.startswith("phasezoo-tests-hf-")
    assert str(datasets.config.HF_DATASETS_CACHE).startswith(home)


def test_config_readme_is_generated_from_the_schema():
    """config/README.md is the schema's page, current (the workflow catalog shows it)."""
    from phasezoo.config_doc import config_doc

    assert (REPO / "config" / "README.md").read_text() == config_doc(schema()), (
        "config/README.md is stale: run phasezoo config-doc --out config/README.md")


def test_config_doc_of_a_small_schema():
    """By hand: a $ref'd folder key, a required allOf axis whose enum narrows a $def's key, a
    protocol key without a default, a mapping of names whose entries get their own table."""
    from phasezoo.config_doc import config_doc

    small = {
        "description": "A config.",
        "properties": {
            "root": {"$ref": "#/$defs/folder", "default": "data", "description": "Where | to."},
            "zoos": {"type": "object", "default": {}, "description": "By name.",
                     "additionalProperties": {"$ref": "#/$defs/zoo"}}},
        "$defs": {
            "folder": {"type": "string"},
            "axis": {"type": "object", "properties": {
                "name": {"type": "string", "description": "Which knob."}}},
            "zoo": {"type": "object", "properties": {
                "axis": {"allOf": [{"$ref": "#/$defs/axis"},
                                   {"properties": {"name": {"enum": ["lr"]}}}],
                         "description": "The axis."},
                "cka": {"type": "integer", "description": "Protocol (ptmz: 10)."}}}}}
    assert config_doc(small).split("\n")[2:] == [
        "# Configuration keys", "", "A config.", "",
        "Configs are validated against this schema on load (`phasezoo validate`, `phasezoo "
        "run`); an unknown key is refused. How a config is run and checked: "
        "[docs/configuration.md](../docs/configuration.md).", "",
        "## `top level`", "", "| key | type | default | description |", "|---|---|---|---|",
        '| `root` | string | `"data"` | Where \\| to. |',
        "| `zoos` | object | `{}` | By name. (keys below) |", "",
        "## `zoos.<name>`", "", "| key | type | default | description |", "|---|---|---|---|",
        "| `zoos.<name>.axis` | object | required | The axis. (keys below) |",
        "| `zoos.<name>.cka` | integer | by `metrics.protocol` | Protocol (ptmz: 10). |", "",
        "## `zoos.<name>.axis`", "", "The axis.", "",
        "| key | type | default | description |", "|---|---|---|---|",
        '| `zoos.<name>.axis.name` | one of `"lr"` | required | Which knob. |', ""]


def test_python_m_phasezoo_outside_the_repository(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "phasezoo", "--help"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "export" in proc.stdout and "config-doc" in proc.stdout


# What the packaged workflow holds: every file of these, as in the checkout.
WORKFLOW_PARTS = ("Snakefile", "workflow", "config", "envs", "profiles")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """phasezoo built as a wheel (with this venv's setuptools: no download)."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = out.glob("phasezoo-*.whl")
    return path


def test_the_wheel_carries_the_workflow(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    files = [p for part in WORKFLOW_PARTS for p in
             ([REPO / part] if (REPO / part).is_file() else (REPO / part).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) > 40
    missing = [p.relative_to(REPO).as_posix() for p in files
               if f"phasezoo/workflow/{p.relative_to(REPO).as_posix()}" not in names]
    assert not missing


@pytest.mark.slow
def test_phasezoo_run_from_the_wheel_in_an_empty_folder(wheel, tmp_path):
    """Installed from the wheel alone (unpacked, first on the path) and run where there is no
    checkout, `phasezoo run -n` plans the packaged workflow on its default config."""
    site, work = tmp_path / "site", tmp_path / "work"
    zipfile.ZipFile(wheel).extractall(site)
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import phasezoo; print(phasezoo.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(site)
    proc = subprocess.run([sys.executable, "-m", "phasezoo", "run", "-n"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert str(site / "phasezoo" / "workflow" / "Snakefile") in out or "job_config" in out
    assert "fetch" in out and "publish" in out
