"""The typed settings against the schema they are built from, and the stages' declared sections
against what the stages read."""

from __future__ import annotations

from dataclasses import fields

import pytest

from phasezoo.cli import GRID, STAGES, main
from phasezoo.config import ZOO_SECTIONS, ConfigError, load_config, schema
from phasezoo.settings import SECTIONS


def _schema_keys(section: str) -> list[str]:
    zoo = schema()["$defs"]["zoo"]["properties"][section]
    if "$ref" in zoo:
        zoo = schema()["$defs"][zoo["$ref"].rsplit("/", 1)[1]]
    return list(zoo["properties"])


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.SECTION)
def test_each_settings_class_has_exactly_its_schema_sections_keys_in_order(cls):
    assert [f.name for f in fields(cls)] == _schema_keys(cls.SECTION)


def test_a_zoo_has_one_field_per_schema_section():
    assert set(ZOO_SECTIONS) == set(schema()["$defs"]["zoo"]["properties"])
    assert {c.SECTION for c in SECTIONS} <= set(ZOO_SECTIONS)


def test_settings_are_frozen_and_typed_from_the_yaml():
    zoo = load_config("config/config.yaml").zoo("mnist-mlp")
    assert zoo.metrics.hessian_max_iter == 40 and zoo.train.keep_epochs == (0, 10, 20, 30)
    with pytest.raises(AttributeError):
        zoo.metrics.hessian_max_iter = 1  # type: ignore[misc]
    assert zoo.as_dict(["train"])["train"]["keep_epochs"] == [0, 10, 20, 30]  # the YAML's form


def test_every_stage_reads_the_grid_and_a_section_it_does_not_declare_is_an_error():
    assert set(STAGES) == {"train", "metrics", "phases", "publish"}
    assert all(s[:len(GRID)] == GRID for s in STAGES.values())
    zoo = load_config("config/config.yaml").zoo("mnist-mlp").only(STAGES["train"], "train")
    assert zoo.train.epochs == 30 and zoo.cells()  # the grid is readable
    with pytest.raises(ConfigError, match=r"^zoos.mnist-mlp.metrics: stage 'train' reads it but "
                                          r"does not declare it"):
        _ = zoo.metrics.max_pairs


def test_a_stage_run_from_its_job_config_file_reads_only_declared_sections(tmp_path, capsys):
    """The phases stage on a config file that holds only its declared sections (as the DAG
    writes it) gets as far as the missing results: reading the config needed nothing more."""
    cfg = load_config("config/config.yaml")
    zoo = cfg.zoo("mnist-mlp")
    job = tmp_path / "phases-zoo.json"
    import json

    job.write_text(json.dumps({"results_dir": str(tmp_path), "zoos": {
        "mnist-mlp": zoo.as_dict(STAGES["phases"])}}))
    assert main(["phases", "--config", str(job), "--zoo", "mnist-mlp", "--quiet"]) == 2
    assert "metrics.parquet: missing" in capsys.readouterr().err
