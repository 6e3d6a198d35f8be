"""Bring your own method: what a user's weight-space-learning method implements to be scored by
``phasezoo benchmark`` on the same tasks, splits, metrics and per-phase tables as the built-in
baselines (``--method module:factory``).

A method sees :class:`Rows`: weights (one row at a time, so zoos larger than memory stream),
layouts, per-layer HT-SR lists, the built-in features and the grid coordinates, never a target
column. ``examples/wsl_method.py`` is a complete method.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import pandas as pd

from phasezoo.wsl.table import ZooTable

# The metadata a method may read: where a checkpoint sits in the grid, never how it scores.
VISIBLE_COLUMNS = ("model_id", "zoo", "cell", "seed", "epoch", "temperature_name",
                   "temperature_value", "load_name", "load_value")


class MethodUnsupported(ValueError):
    """Raised by a method's ``fit`` for a zoo it cannot handle; the report names the reason."""


@dataclass(frozen=True)
class Rows:
    """Some checkpoints of a zoo as a method may see them.

    ``hidden`` holds the task's own grid column (``temperature_value`` when predicting the
    temperature), which :attr:`meta` then leaves out, as the hyperparameters baseline does.
    """

    table: ZooTable
    index: np.ndarray
    hidden: tuple[str, ...] = ()
    _features: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def meta(self) -> pd.DataFrame:
        """Grid coordinates and ids of these rows (no target columns)."""
        cols = [c for c in VISIBLE_COLUMNS if c in self.table.meta and c not in self.hidden]
        return self.table.meta.iloc[self.index][cols].reset_index(drop=True)

    @property
    def layouts(self) -> list[dict]:
        """Each row's weight layout (tensor names, shapes, offsets): see ``datasets_card.md``."""
        return [self.table.layouts[i] for i in self.index]

    def weights(self) -> Iterator[np.ndarray]:
        """Each row's flat float32 weights, one row in memory at a time."""
        for i in self.index:
            yield (self.table.weights[i] if self.table.weights is not None
                   else self.table.reader(int(i)))

    def layer_column(self, name: str) -> list[np.ndarray]:
        """A per-layer list column (``layer_alpha``, ...) of these rows."""
        return [self.table.layer_columns[name][i] for i in self.index]

    def features(self, name: str) -> np.ndarray:
        """A built-in extractor's features (:data:`phasezoo.wsl.features.EXTRACTORS`, e.g.
        ``layer_statistics``) of these rows; computed once per zoo."""
        from phasezoo.wsl.features import EXTRACTORS

        if name not in self._features:
            self._features[name] = EXTRACTORS[name](self.table, "")
        return self._features[name][self.index]


class Method(Protocol):
    """A weight-space-learning method: fit on training rows (validation rows given for model
    selection), then predict. ``kind`` is ``regression`` (float targets) or
    ``classification`` (string labels); ``seed`` is the split's seed.

    Optional attributes of the factory narrow what it is fit on (all when absent): ``tasks``
    (task names), ``splits`` (split name prefixes), ``seeds`` (the first N seeds), ``name``.
    """

    def fit(self, train: Rows, y: np.ndarray, val: Rows, y_val: np.ndarray, kind: str,
            seed: int) -> None: ...

    def predict(self, rows: Rows) -> np.ndarray: ...


MethodFactory = Callable[[], Method]


def load_method(spec: str) -> tuple[str, MethodFactory]:
    """``(name, factory)`` from ``module:factory`` or ``path/to/file.py:factory``; the name is
    the method's own (:func:`method_name`), the column heading of its scores.

    Raises:
        ValueError: naming the spec and what could not be found.
    """
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"--method {spec}: expected module:factory or file.py:factory")
    try:
        module = _import(target)
    except (ImportError, FileNotFoundError) as e:
        raise ValueError(f"--method {spec}: cannot import {target} ({e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"--method {spec}: {target} has no callable '{attr}'")
    return method_name(factory, attr), factory


def method_name(factory: MethodFactory, attr: str) -> str:
    """The method's own name: the factory's ``name`` attribute, else (a factory function) the
    ``name`` attribute of a method it builds, else the factory's ``__name__`` (a class's or a
    function's), else ``attr``, the name the spec looked it up by.

    Why not ``attr`` first: a module often exports its method under an alias (``factory``),
    and every such method was then headed ``factory`` in the table. Building one method only
    runs its constructor, which every split runs anyway.
    """
    name = getattr(factory, "name", None)
    if not name and not isinstance(factory, type):
        name = getattr(factory(), "name", None)
    name = name or getattr(factory, "__name__", None)
    return str(attr if not name or name == "<lambda>" else name)


def _import(target: str):
    if not target.endswith(".py"):
        return importlib.import_module(target)
    path = Path(target)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
