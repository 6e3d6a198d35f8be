"""Read a cell's training output (``train.h5``, written by :mod:`phasezoo.train`).

This is the file-level contract between the train stage and every later stage: the later
stages never import the trainer, they read this.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

import h5py
import numpy as np
from torch import nn

from phasezoo.recipe import Recipe, recipe_of_attrs
from phasezoo.weights import build_model


class CheckpointWeights(Protocol):
    """Indexable by ``[member, kept]`` to one flat float32 vector: an array in memory, the
    ``kept_weights`` dataset of an open ``train.h5`` (one checkpoint read per index), or weights
    made on demand (a rehearsal's initialisations)."""

    shape: tuple[int, ...]

    def __getitem__(self, key: tuple[int, int]) -> np.ndarray: ...


@dataclass
class Population:
    """The kept checkpoints of every seed of one cell."""

    zoo: str
    cell: str
    recipe: Recipe
    layout: dict[str, Any]
    seeds: np.ndarray           # (members,)
    diverged_epoch: np.ndarray  # (members,), -1 = never
    kept_epochs: np.ndarray     # (kept,)
    kept_weights: CheckpointWeights  # (members, kept, values) float32
    curves: np.ndarray          # (members, 4, epochs + 1): train/test loss/accuracy per epoch
    data_info: dict[str, Any]   # the dataset and split the population was trained on

    def diverged_at(self, member: int, epoch: int) -> bool:
        """Whether the member had diverged by ``epoch`` (its weights then are its last finite ones)."""
        d = int(self.diverged_epoch[member])
        return 0 <= d <= epoch

    def model_id(self, member: int) -> str:
        return f"{self.zoo}/{self.cell}/seed-{int(self.seeds[member])}"

    def model(self, member: int, kept: int) -> nn.Module:
        """The member's module at kept index ``kept``, in eval mode on the CPU."""
        return build_model(self.layout, self.kept_weights[member, kept])

    def checkpoints(self) -> Iterator[tuple[int, int, int]]:
        """(member index, kept index, epoch) of every kept checkpoint, member-major."""
        for i in range(len(self.seeds)):
            for k, epoch in enumerate(self.kept_epochs):
                yield i, k, int(epoch)


def read_data_info(path: str | Path) -> dict[str, Any]:
    """The dataset/split description of a ``train.h5`` without loading its weights."""
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["data_info"])


def read_population(path: str | Path) -> Population:
    """Load a complete ``train.h5``, every kept checkpoint in memory (see :func:`open_population`
    for one checkpoint at a time).

    Raises:
        ValueError: if the file is a partial (unfinished) population.
    """
    with open_population(path) as pop:
        pop.kept_weights = pop.kept_weights[:]
        return pop


@contextmanager
def open_population(path: str | Path) -> Iterator[Population]:
    """A complete ``train.h5`` whose ``kept_weights`` stay in the file while it is open.

    Why: a cell of a full-size zoo holds seeds × kept epochs rows of up to 1.5 GB each (ResNet-50
    at width 256); indexing ``kept_weights[i, k]`` reads one checkpoint, so a stage that goes
    through them one by one needs memory for one row, not the cell.

    Raises:
        ValueError: if the file is a partial (unfinished) population.
    """
    with h5py.File(path, "r") as f:
        if not f.attrs.get("complete", False):
            raise ValueError(f"{path}: training is not complete (epochs_done="
                             f"{f.attrs.get('epochs_done')}); run the train stage again to resume")
        yield Population(
            zoo=str(f.attrs["zoo"]), cell=str(f.attrs["cell"]),
            recipe=recipe_of_attrs(f.attrs, str(path)), layout=json.loads(f.attrs["layout"]),
            seeds=f["seeds"][:], diverged_epoch=f["diverged_epoch"][:],
            kept_epochs=f["kept_epochs"][:], kept_weights=f["kept_weights"],
            curves=f["curves"][:], data_info=json.loads(f.attrs["data_info"]))
