"""Load and validate a phasezoo config; expand each zoo's grid into cells and model ids.

The JSON Schema ``config.schema.yaml`` (shipped inside the package and linked from
``workflow/schemas/``) is the single source of truth for keys, types and defaults. The Snakefile
and the CLI both call :func:`load_config`, so a bad config fails the same way everywhere: one
``ConfigError`` line naming the key, before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

SCHEMA_FILE = "config.schema.yaml"
INTEGER_AXES = {"batch_size", "width"}
DATASET_PREP = ("image_size", "channels", "train_size", "test_size", "options")
# Known here without importing the dataset registry (and torch), for checks before anything runs.
BETA_DATASETS = {"convection"}
NON_IMAGE_DATASETS = {"convection", "text"}


class ConfigError(ValueError):
    """A config that does not validate; the message names the offending key."""


@dataclass(frozen=True)
class Axis:
    """One axis of the phase grid: which hyperparameter it sweeps and its values."""

    name: str
    values: tuple[float, ...]
    log2: bool = True


@dataclass(frozen=True)
class Cell:
    """One grid cell: a (temperature, load) pair, its resolved hyperparameters and its seeds."""

    zoo: str
    temperature: tuple[str, float]
    load: tuple[str, float]
    seeds: tuple[int, ...]
    hparams: dict[str, Any] = field(hash=False, compare=False)

    @property
    def id(self) -> str:
        """Stable, path-safe cell id, e.g. ``batch_size-32_width-8``."""
        return f"{_fmt(*self.temperature)}_{_fmt(*self.load)}"

    def model_id(self, seed: int) -> str:
        """Id of one member of the population: ``zoo/cell/seed-N``."""
        return f"{self.zoo}/{self.id}/seed-{seed}"

    def fingerprint(self) -> str:
        """Hash of everything that determines the trained weights (used to refuse stale resumes)."""
        blob = json.dumps([self.zoo, self.id, self.seeds, self.hparams], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ZooSpec:
    """A validated zoo: its grid axes, seeds and base hyperparameters."""

    name: str
    raw: dict[str, Any]

    @property
    def temperature(self) -> Axis:
        return Axis(**self.raw["temperature"])

    @property
    def load(self) -> Axis:
        return Axis(**self.raw["load"])

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.raw["seeds"])

    def cells(self) -> list[Cell]:
        """All cells of the grid, temperature-major, in config order."""
        return [self.cell(t, ld) for t in self.temperature.values for ld in self.load.values]

    def cell(self, temperature: float, load: float) -> Cell:
        """Resolve one grid point into a cell with its full hyperparameter set."""
        t_name, l_name = self.temperature.name, self.load.name
        t, ld = _coerce(t_name, temperature), _coerce(l_name, load)
        data, model = self.raw["dataset"], self.raw["model"]
        hp = {**self.raw["train"], "dataset": data["name"], "normalize": data["normalize"],
              "model": model["name"], "width": model["width"], "depth": model["depth"]}
        # Only present when set, so configs without them keep their cells' fingerprints.
        if not any(hp["augment"].values()):
            del hp["augment"]
        prep = {k: data[k] for k in DATASET_PREP if data.get(k) not in (None, {})}
        if prep:
            hp["dataset_options"] = prep
        if model.get("options"):
            hp["model_options"] = model["options"]
        hp[t_name] = t
        hp[l_name] = ld
        return Cell(self.name, (t_name, t), (l_name, ld), self.seeds, hp)

    def cell_by_id(self, cell_id: str) -> Cell:
        """Look a cell up by id; the error lists the valid ids."""
        cells = {c.id: c for c in self.cells()}
        if cell_id not in cells:
            raise ConfigError(f"zoos.{self.name}: no cell '{cell_id}'; cells are {sorted(cells)}")
        return cells[cell_id]


@dataclass(frozen=True)
class Config:
    """A validated config (defaults filled in) and its zoos."""

    raw: dict[str, Any]

    @property
    def zoos(self) -> dict[str, ZooSpec]:
        return {name: ZooSpec(name, z) for name, z in self.raw["zoos"].items()}

    def zoo(self, name: str) -> ZooSpec:
        """Look a zoo up by name; the error lists the valid names."""
        if name not in self.raw["zoos"]:
            raise ConfigError(f"zoos: no zoo '{name}'; zoos are {sorted(self.raw['zoos'])}")
        return self.zoos[name]

    @property
    def results_dir(self) -> str:
        return self.raw["results_dir"]

    @property
    def zoos_dir(self) -> str:
        return self.raw["zoos_dir"]

    @property
    def data_root(self) -> str:
        return self.raw["data_root"]

    @property
    def device(self) -> str:
        return self.raw["device"]


def schema() -> dict[str, Any]:
    """The config JSON Schema, loaded from the package."""
    text = resources.files("phasezoo").joinpath(SCHEMA_FILE).read_text()
    return yaml.safe_load(text)


def load_config(source: str | Path | dict[str, Any]) -> Config:
    """Load a YAML file (or a dict, or inline JSON text), fill defaults, validate, check the grid.

    Inline JSON (a string starting with ``{``) is how Snakemake rules hand the CLI the exact,
    already-resolved config of one zoo.

    Raises:
        ConfigError: with one line naming the key at fault.
    """
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        raw = yaml.safe_load(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = yaml.safe_load(path.read_text()) or {}
    validate(raw)
    return Config(raw)


def validate(raw: dict[str, Any]) -> None:
    """Validate ``raw`` in place against the schema (filling defaults) plus semantic checks."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping of keys")
    validator = _DefaultFillingValidator(schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe(_deepest(errors[0])))
    if not raw["zoos"]:
        raise ConfigError("zoos: the config defines no zoo (empty grid)")
    for name, zoo in raw["zoos"].items():
        _check_zoo(name, zoo)


def _check_zoo(name: str, zoo: dict[str, Any]) -> None:
    """Checks a JSON Schema cannot express: integer axes, epochs, fractions."""
    where = f"zoos.{name}"
    for axis in ("temperature", "load"):
        ax = zoo[axis]
        if ax["name"] in INTEGER_AXES and any(float(v) != int(v) for v in ax["values"]):
            raise ConfigError(f"{where}.{axis}.values: {ax['name']} values must be integers")
        if ax["name"] == "data_fraction" and any(v > 1 for v in ax["values"]):
            raise ConfigError(f"{where}.{axis}.values: data fractions must be in (0, 1]")
    dataset = zoo["dataset"]["name"]
    if zoo["load"]["name"] == "beta" and dataset not in BETA_DATASETS:
        raise ConfigError(f"{where}.load.name: beta is the convection coefficient of the "
                          f"{sorted(BETA_DATASETS)} dataset, not of '{dataset}'")
    if any(zoo["train"]["augment"].values()) and dataset in NON_IMAGE_DATASETS:
        raise ConfigError(f"{where}.train.augment: image augmentation on '{dataset}', whose "
                          "inputs are not images")
    train = zoo["train"]
    late = [e for e in train["keep_epochs"] if e > train["epochs"]]
    if late:
        raise ConfigError(f"{where}.train.keep_epochs: {late} exceed train.epochs={train['epochs']}")
    if train["schedule"] == "step" and not train["step_milestones"]:
        raise ConfigError(f"{where}.train.step_milestones: schedule 'step' needs milestones")


def _fmt(name: str, value: float) -> str:
    return f"{name}-{value:g}"


def _coerce(axis_name: str, value: float) -> float | int:
    return int(value) if axis_name in INTEGER_AXES else float(value)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Pick the most specific sub-error of an ``allOf``/``$ref`` failure."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "config"
    if error.validator == "additionalProperties":
        return f"{key}: {error.message} (unknown key)"
    return f"{key}: {error.message}"


def _set_defaults(validator: Any, properties: dict, instance: Any, schema_: dict) -> Iterator:
    """JSON Schema ``properties`` keyword that first fills missing keys with their defaults."""
    if isinstance(instance, dict):
        for prop, sub in properties.items():
            if "default" in sub and prop not in instance:
                instance[prop] = copy.deepcopy(sub["default"])
    yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema_)


_DefaultFillingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"properties": _set_defaults})
