"""The conda environment and pyproject pin the same packages; the schema link resolves."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import yaml

from phasezoo.config import schema

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
