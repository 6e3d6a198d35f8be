"""Load a phasezoo config into typed zoos; expand each zoo's grid into cells and model ids.

:func:`load_config` reads the YAML and has :mod:`phasezoo.config_checks` validate it (the JSON
Schema ``config.schema.yaml``, shipped inside the package and linked from ``workflow/schemas/``,
is the single source of truth for keys, types and defaults, plus the semantic checks). The
Snakefile and the CLI both call it, so a bad config fails the same way everywhere: one
``ConfigError`` line naming the key, before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

from phasezoo.config_checks import (ConfigError, _coerce, _fmt, read_config_file,
                                    validate)
from phasezoo.recipe import RECIPE_ATTR, Recipe
from phasezoo.settings import (SECTIONS, BenchmarkSettings, DatasetSettings, MetricsSettings,
                               ModelSettings, PhaseThresholds, Resources, Section,
                               StudiesSettings, TrainSettings)

# A zoo's sections, in the schema's order: a stage reads a subset (ZooSpec.only).
ZOO_SECTIONS = ("description", "dataset", "model", "temperature", "load", "seeds", "train",
                "metrics", "phases", "benchmark", "studies", "resources")


@dataclass(frozen=True)
class Axis:
    """One axis of the phase grid: which hyperparameter it sweeps and its values."""

    name: str
    values: tuple[float, ...]
    log2: bool = True

    @classmethod
    def of(cls, raw: dict[str, Any]) -> "Axis":
        return cls(raw["name"], tuple(raw["values"]), raw["log2"])

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "log2": self.log2}


@dataclass(frozen=True)
class Cell:
    """One grid cell: a (temperature, load) pair, its recipe (the zoo's settings with the two
    axis values applied) and its seeds."""

    zoo: str
    temperature: tuple[str, float]
    load: tuple[str, float]
    seeds: tuple[int, ...]
    recipe: Recipe = field(hash=False, compare=False)

    @property
    def temperature_id(self) -> str:
        """The temperature half of the id, e.g. ``batch_size-32``."""
        return _fmt(*self.temperature)

    @property
    def load_id(self) -> str:
        """The load half of the id, e.g. ``width-8`` (what a learning-rate group shares)."""
        return _fmt(*self.load)

    @property
    def id(self) -> str:
        """Stable, path-safe cell id, e.g. ``batch_size-32_width-8``."""
        return f"{self.temperature_id}_{self.load_id}"

    def model_id(self, seed: int) -> str:
        """Id of one member of the population: ``zoo/cell/seed-N``."""
        return f"{self.zoo}/{self.id}/seed-{seed}"

    def fingerprint(self) -> str:
        """Hash of everything that determines the trained weights (used to refuse stale resumes):
        the recipe's record under its versioned key, so a new record layout never matches an
        old file's fingerprint."""
        blob = json.dumps([self.zoo, self.id, self.seeds, {RECIPE_ATTR: self.recipe.record()}],
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ZooSpec:
    """A validated zoo: its grid axes, seeds and typed settings, one field per config section
    (:mod:`phasezoo.settings`). A stage gets :meth:`only` the sections it declares
    (:data:`phasezoo.stages.STAGES`); reading another raises ConfigError."""

    name: str
    description: str | None
    dataset: DatasetSettings
    model: ModelSettings
    temperature: Axis
    load: Axis
    seeds: tuple[int, ...]
    train: TrainSettings
    metrics: MetricsSettings
    phases: PhaseThresholds
    benchmark: BenchmarkSettings
    studies: StudiesSettings
    resources: Resources

    @classmethod
    def of(cls, name: str, raw: dict[str, Any]) -> "ZooSpec":
        """The zoo from its validated section of the config (defaults filled)."""
        sections = {s.SECTION: s.of(raw[s.SECTION]) for s in SECTIONS}
        return cls(name=name, description=raw["description"], temperature=Axis.of(raw["temperature"]),
                   load=Axis.of(raw["load"]), seeds=tuple(raw["seeds"]), **sections)

    def as_dict(self, sections: Iterable[str] = ZOO_SECTIONS) -> dict[str, Any]:
        """The named sections as the validated YAML has them (a job's config file)."""
        return {k: _as_yaml(getattr(self, k)) for k in sections}

    def only(self, sections: Iterable[str], stage: str) -> "ZooSpec":
        """This zoo with only ``sections`` readable: the others raise ConfigError naming
        ``stage``, so a stage cannot read a section its declaration (and so its job's config
        file, and its rerun trigger) leaves out."""
        hidden = {k: _Undeclared(self.name, k, stage) for k in ZOO_SECTIONS if k not in sections}
        return replace(self, **hidden)

    def cells(self) -> list[Cell]:
        """All cells of the grid, temperature-major, in config order."""
        return list(self._grid.values())

    @cached_property
    def _grid(self) -> dict[str, Cell]:
        """{cell id: cell}, resolved once per spec: the DAG asks for a zoo's cells once per job,
        so rebuilding them each time made planning quadratic in the grid size (a frozen spec
        never changes; ``only`` and ``replace`` make new specs with their own cache)."""
        return {c.id: c for c in (self.cell(t, ld) for t in self.temperature.values
                                  for ld in self.load.values)}

    def cell(self, temperature: float, load: float) -> Cell:
        """Resolve one grid point into a cell with its recipe."""
        t_name, l_name = self.temperature.name, self.load.name
        t, ld = _coerce(t_name, temperature), _coerce(l_name, load)
        recipe = Recipe.of(self.train, self.dataset, self.model, {t_name: t, l_name: ld})
        return Cell(self.name, (t_name, t), (l_name, ld), self.seeds, recipe)

    def has_cell(self, cell_id: str) -> bool:
        """Whether ``cell_id`` is a cell of this zoo."""
        return cell_id in self._grid

    def cell_by_id(self, cell_id: str) -> Cell:
        """Look a cell up by id; the error lists the valid ids."""
        if cell_id not in self._grid:
            raise ConfigError(f"zoos.{self.name}: no cell '{cell_id}'; cells are "
                              f"{sorted(self._grid)}")
        return self._grid[cell_id]


class _Undeclared:
    """A section the running stage did not declare: any use is a ConfigError naming it."""

    def __init__(self, zoo: str, section: str, stage: str) -> None:
        self._what = (zoo, section, stage)

    def __getattr__(self, key: str) -> Any:
        zoo, section, stage = self._what
        raise ConfigError(f"zoos.{zoo}.{section}: stage '{stage}' reads it but does not declare "
                          "it (phasezoo.stages.STAGES)")

    def __iter__(self) -> Iterator:
        return self.__getattr__("__iter__")


def _as_yaml(value: Any) -> Any:
    """A section, axis or seed tuple as the validated YAML had it."""
    if isinstance(value, (Section, Axis)):
        return value.as_dict()
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Config:
    """A validated config: the workflow keys, the zoos (typed), and the validated document
    itself (``raw``, defaults filled), which the DAG cuts into its jobs' config files."""

    raw: dict[str, Any]
    results_dir: str
    zoos_dir: str
    data_root: str
    device: str
    transfer_benchmark: bool
    zoos: dict[str, ZooSpec]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> "Config":
        zoos = {name: ZooSpec.of(name, z) for name, z in raw["zoos"].items()}
        return cls(raw, raw["results_dir"], raw["zoos_dir"], raw["data_root"], raw["device"],
                   raw["transfer_benchmark"], zoos)

    def zoo(self, name: str) -> ZooSpec:
        """Look a zoo up by name; the error lists the valid names."""
        if name not in self.zoos:
            raise ConfigError(f"zoos: no zoo '{name}'; zoos are {sorted(self.zoos)}")
        return self.zoos[name]


def load_config(source: str | Path | dict[str, Any]) -> Config:
    """Load a YAML file (or a dict), fill defaults, validate, check the grid, and build the typed
    settings (:mod:`phasezoo.settings`) once.

    Raises:
        ConfigError: with one line naming the key at fault (or the file and line of a YAML
            syntax error or duplicate key).
    """
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        raw = read_config_file(source) or {}
    validate(raw)
    return Config.of(raw)
