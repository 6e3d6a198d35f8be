"""The pipeline's stage table: what each stage reads of a zoo's config, and how.

One table that the ``phasezoo`` command (:mod:`phasezoo.cli`, :mod:`phasezoo.report_commands`),
the job config files and the Snakemake rules (``workflow/rules/common.smk``) all read, so the
three never disagree on what a stage is given:

* a stage run on a **job config file** (train, metrics, phases, publish) reads the zoo sections
  it declares here and nothing else: the DAG writes each job a config with only these sections
  (rule ``job_config``), so a job reruns when, and only when, a section it reads changes, and the
  stage itself gets a zoo whose other sections raise ConfigError (a declaration cannot fall
  behind its code);
* a stage run on **flags** (fetch, and the report stages that read a published zoo: benchmark,
  studies, diagnose) takes the config keys it reads as command-line options (:class:`Flag`):
  the rule writes each from the zoo's config (:func:`flag_values`), and argparse takes each
  option's type and default from the config schema (:func:`flag_argument`), so a command run by
  hand and the workflow's run of a config that leaves the key out get the same value.

Kept free of torch: the Snakefile imports it on every parse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from phasezoo.config_checks import zoo_default, zoo_key_schema

# The sections that name a zoo's cells and their weights (ZooSpec.cells): every stage run on a
# job config file reads them.
GRID = ("dataset", "model", "temperature", "load", "seeds", "train")


@dataclass(frozen=True)
class Flag:
    """A config key a stage takes as a command-line option: ``option`` (``--seeds``) carries the
    zoo's ``section.key`` (``benchmark.seeds``)."""

    option: str
    key: str
    required: bool = False  # the command cannot run without it (no schema default applies)

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


@dataclass(frozen=True)
class Stage:
    """One stage: the zoo sections it reads; on a job config file (``job_config``) or as the
    ``flags`` its rule passes."""

    name: str
    sections: tuple[str, ...]
    job_config: bool
    flags: tuple[Flag, ...] = ()


def _on_config(name: str, *reads: str) -> Stage:
    return Stage(name, GRID + reads, job_config=True)


def _on_flags(name: str, *flags: Flag) -> Stage:
    return Stage(name, tuple(dict.fromkeys(f.section for f in flags)), job_config=False,
                 flags=flags)


STAGES: dict[str, Stage] = {s.name: s for s in (
    _on_config("train"),
    _on_config("metrics", "metrics"),
    _on_config("phases", "metrics", "phases"),
    _on_config("publish", "description", "metrics", "phases"),
    _on_flags("fetch", Flag("--dataset", "dataset.name", required=True),
              Flag("--options", "dataset.options")),
    _on_flags("benchmark", Flag("--seeds", "benchmark.seeds")),
    _on_flags("studies", Flag("--transfer-dataset", "studies.transfer_dataset"),
              Flag("--finetune-epochs", "studies.finetune_epochs"),
              Flag("--finetune-lr", "studies.finetune_lr"),
              Flag("--finetune-batch-size", "studies.finetune_batch_size"),
              Flag("--regime-densities", "studies.regime_densities"),
              Flag("--regime-epochs", "studies.regime_epochs"),
              Flag("--regime-dense-seeds", "studies.regime_dense_seeds"),
              Flag("--regime-retrain-seeds", "studies.regime_retrain_seeds")),
    _on_flags("diagnose"),
)}
# The stages whose jobs read a job config file (rule job_config writes one per job).
JOB_CONFIG_STAGES = tuple(name for name, s in STAGES.items() if s.job_config)


def stage(name: str) -> Stage:
    """The stage called ``name``.

    Raises:
        ValueError: naming the stages, for a name the table does not hold.
    """
    if name not in STAGES:
        raise ValueError(f"unknown stage '{name}'; stages are {sorted(STAGES)}")
    return STAGES[name]


def flag_values(name: str, sections: dict[str, Any]) -> list[tuple[str, str]]:
    """(option, value) of every flag of stage ``name``, read from a zoo's resolved config
    ``sections`` (``ZooSpec.as_dict()``): what its rule passes. A null value (no transfer
    dataset) passes no option; a mapping passes as JSON with sorted keys."""
    out = []
    for flag in stage(name).flags:
        value = sections[flag.section][flag.name]
        if value is not None:
            out.append((flag.option, _text(value)))
    return out


def flag_argument(flag: Flag) -> dict[str, Any]:
    """``argparse.add_argument`` keywords of ``flag``: its type and default from the config
    schema's key, the schema's description as its help (``%`` doubled: argparse formats it)."""
    spec = zoo_key_schema(flag.section, flag.name)
    about = spec["description"].replace("%", "%%")
    kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    kind = next(k for k in kinds if k != "null")
    parse: Callable[[str], Any] = _PARSERS[kind]
    if flag.required:
        return {"type": parse, "required": True, "help": f"{about} (config {flag.key})"}
    default = zoo_default(flag.section, flag.name)
    default = _text(default) if kind in ("object", "array") else default
    return {"type": parse, "default": default,
            "help": f"{about} (config {flag.key}; default: "
                    f"{'none' if default is None else _text(default)})"}


def _text(value: Any) -> str:
    """A config value as its option's text: a mapping or list as JSON, anything else as str."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


# An object's or array's option stays JSON text: the command parses it, naming the option in
# its error.
_PARSERS: dict[str, Callable[[str], Any]] = {"integer": int, "number": float, "string": str,
                                              "object": str, "array": str}
