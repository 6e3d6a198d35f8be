"""The typed settings against the schema they are built from, and the stages' declared sections
against what the stages read."""

from __future__ import annotations

from dataclasses import fields

import json
from pathlib import Path

import pytest

from phasezoo.cli import build_parser, main
from phasezoo.config import ZOO_SECTIONS, load_config
from phasezoo.stages import GRID, JOB_CONFIG_STAGES, STAGES, flag_values
from phasezoo.config_checks import ConfigError, schema
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
    assert JOB_CONFIG_STAGES == ("train", "metrics", "phases", "publish")
    assert all(STAGES[s].sections[:len(GRID)] == GRID for s in JOB_CONFIG_STAGES)
    zoo = load_config("config/config.yaml").zoo("mnist-mlp").only(STAGES["train"].sections,
                                                                   "train")
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
        "mnist-mlp": zoo.as_dict(STAGES["phases"].sections)}}))
    assert main(["phases", "--config", str(job), "--zoo", "mnist-mlp", "--quiet"]) == 2
    assert "metrics.parquet: missing" in capsys.readouterr().err


def _subparser(name: str):
    """The ``phasezoo`` subcommand parser called ``name``."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices[name]


@pytest.mark.parametrize("stage", [s for s in STAGES if not STAGES[s].job_config])
def test_a_flag_stage_takes_its_config_keys_as_options_with_the_schema_defaults(stage):
    """Every config key that fetch and the report stages take from the stage table is an
    option of their command, defaulting to the schema's default (read off the schema file here,
    not through the table), and the rule's arguments from a config parse back to its values."""
    import yaml

    zoo_schema = yaml.safe_load(Path("src/phasezoo/config.schema.yaml").read_text())[
        "$defs"]["zoo"]["properties"]
    options = {a.option_strings[0]: a for a in _subparser(stage)._actions if a.option_strings}
    for flag in STAGES[stage].flags:
        default = zoo_schema[flag.section]["properties"][flag.name]["default"]
        action = options[flag.option]
        assert action.required if flag.required else action.default in (default, json.dumps(default))
    raw = load_config("config/config.yaml").raw
    raw["zoos"] = {"z": {**raw["zoos"]["mnist-mlp"], "benchmark": {"seeds": 7},
                         "studies": {"transfer_dataset": "sklearn-digits", "finetune_lr": 0.5},
                         "dataset": {"name": "convection", "options": {"beta": 2.0}}}}
    zoo = load_config(raw).zoo("z")
    argv = [x for pair in flag_values(stage, zoo.as_dict(STAGES[stage].sections)) for x in pair]
    parsed = vars(_subparser(stage).parse_args([*argv, *_positionals(stage)]))
    for flag in STAGES[stage].flags:
        want = getattr(getattr(zoo, flag.section), flag.name)
        got = parsed[flag.option[2:].replace("-", "_")]
        # a mapping or list travels as JSON text (the typed section holds a list as a tuple)
        if isinstance(want, (dict, tuple)):
            got, want = json.loads(got), (list(want) if isinstance(want, tuple) else want)
        assert got == want, flag


def _positionals(stage: str) -> list[str]:
    """What the command needs beyond its flags to parse."""
    return [] if stage == "fetch" else ["zoo-folder", "--out", "out"]
