"""``phasezoo run``: hand Snakemake only a config that phasezoo has read and validated.

Why not ``snakemake --configfile F`` directly: Snakemake reads a config file through its YAML
template engine (yte), which evaluates Python expressions when the file sets
``__use_yte__: true``, before the workflow (and so phasezoo's validation) runs. A shared or
downloaded config could run any code on ``snakemake -n``. ``phasezoo run`` reads every
``--configfile`` with phasezoo's strict YAML reader (plain data only, the template marker
refused), validates the merged config, writes it as JSON (Snakemake reads JSON first and never
templates it) under ``.snakemake/phasezoo/``, and runs Snakemake on that copy. It also removes a
killed run's stale lock first (never while a Snakemake runs in the folder), so the same command
resumes after a kill.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from phasezoo.atomic import write_atomic
from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError, read_config_file
from phasezoo.snakemake_process import job_environment, snakemake_command
from phasezoo.unlock import unlock_stale

CONFIG_OPTIONS = ("--configfile", "--configfiles")
# Where the checked copies live: inside Snakemake's own folder of the working directory, which
# cluster jobs see (they re-read the config file they are given).
CHECKED_DIR = Path(".snakemake") / "phasezoo"
# The workflow's own config, which its Snakefile always loads first (``configfile:``).
WORKFLOW_CONFIG = Path("config") / "config.yaml"


def split_configfiles(argv: list[str]) -> tuple[list[str], list[str]]:
    """The config files among Snakemake arguments and the other arguments, as Snakemake's own
    parser splits them: ``--configfile A B`` takes every following word up to the next option,
    ``--configfile=A`` one file."""
    files: list[str] = []
    rest: list[str] = []
    taking = False
    for arg in argv:
        option, eq, value = arg.partition("=")
        if option in CONFIG_OPTIONS:
            taking = not eq
            files += [value] if eq else []
        elif taking and not arg.startswith("-"):
            files.append(arg)
        else:
            taking = False
            rest.append(arg)
    return files, rest


def merged_config(files: list[str]) -> dict[str, Any]:
    """The files' configs merged as Snakemake merges them (later keys win, nested mappings
    merged), each read by phasezoo's strict reader, then validated.

    Raises:
        ConfigError: naming the file (a template marker, a YAML error) or the key at fault.
    """
    merged: dict[str, Any] = {}
    for name in files:
        doc = read_config_file(name)
        if not isinstance(doc, dict):
            raise ConfigError(f"{name}: the top level must be a mapping of keys")
        _merge(merged, doc)
    load_config(merged)  # validates a deep copy: the checked file keeps the config as written
    return merged


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Snakemake's ``update_config``: mappings merged key by key, anything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def write_checked(config: dict[str, Any], folder: Path) -> Path:
    """The validated config as JSON under ``folder``/.snakemake/phasezoo, named by its digest
    (the same config always gives the same file, so reruns see the same path)."""
    text = json.dumps(config, sort_keys=True, indent=1) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = folder / CHECKED_DIR / f"config-{digest}.json"
    if not (out.is_file() and out.read_text() == text):
        write_atomic(out, lambda tmp: tmp.write_text(text))
    return out


def checked_arguments(argv: list[str], folder: Path, workflow: Path) -> list[str]:
    """Snakemake arguments with every config file replaced by one checked JSON copy.

    ``workflow`` is the folder of the Snakefile, whose ``config/config.yaml`` Snakemake loads
    before any ``--configfile``: it is read strictly too, so a template marker there is refused.
    """
    files, rest = split_configfiles(argv)
    default = workflow / WORKFLOW_CONFIG
    if default.is_file():
        read_config_file(default)
    if not files:
        return rest
    return [*rest, "--configfile", str(write_checked(merged_config(files), folder).resolve())]


def option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the last of Snakemake's options ``names`` in ``args`` (``-d D``,
    ``--directory=D``), or None."""
    value = None
    for i, arg in enumerate(args):
        option, eq, rest = arg.partition("=")
        if option in names:
            value = rest if eq else (args[i + 1] if i + 1 < len(args) else None)
    return value


def run(argv: list[str]) -> int:
    """Check the configs, remove a stale lock, then become Snakemake (``exec``: Ctrl-C and the
    exit status are Snakemake's own). Returns only on an error before Snakemake starts."""
    folder = Path(option_value(argv, ("-d", "--directory")) or ".").resolve()
    snakefile = option_value(argv, ("-s", "--snakefile"))
    workflow = Path(snakefile).resolve().parent if snakefile else Path.cwd()
    args = checked_arguments(argv, folder, workflow)
    if "--unlock" not in args:
        unlock_stale(folder, args)  # 1 (a Snakemake runs there): Snakemake's lock decides
    command = snakemake_command(args)
    os.execve(command[0], command, job_environment())
    return 1  # not reached
