"""A network's permutation groups and their elements: what permuting hidden units moves, and
how one such permutation is drawn and applied to a state dict.

Permuting the hidden units of a network (the rows of one layer, the matching columns of the
next) leaves its function unchanged. A :class:`PermutationSpec` lists an architecture's
permutation groups and, for each group, the (state-dict entry, axis) pairs it permutes, as
git-re-basin's ``PermutationSpec`` does (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin",
github.com/samuela/git-re-basin, ``src/weight_matching.py``). The rules that derive a spec from a
module tree are :mod:`phasezoo.wsl.permutation_rules`; the search for the element that best
matches two models is :mod:`phasezoo.wsl.weight_matching`; the public API on modules and zoo rows
is :mod:`phasezoo.wsl.symmetry`.

A :data:`Permutation` gives each group one index vector per family: an attention layer's heads
move as wholes, while the dimensions within a head move independently for q/k and for v/out
(:func:`compose`), so its two families get two vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

# Cost matrices are units² float64 per group: the catalogue's largest group is a ResNet-50 at
# width 256's last stage (8·256·4 = 8,192 channels, 0.5 GiB). A crafted layout naming a wider
# layer is refused before its cost matrix is allocated.
MAX_GROUP_UNITS = 16_384

Permutation = dict[str, list[torch.Tensor]]  # group name → one index vector per family
Seed = Union[int, np.random.Generator]


@dataclass(frozen=True)
class Axis:
    """One axis (or a slice of it) of one state-dict entry that a group permutes: positions
    ``start + i·unit … start + (i+1)·unit − 1`` move together as the group's index ``i``.
    ``produces``: the axis belongs to what computes the units (a layer's rows and bias, the
    normalisation after it, an embedding), not to a layer that reads them (input columns)."""

    key: str
    axis: int
    start: int = 0
    unit: int = 1
    produces: bool = True


@dataclass(frozen=True)
class Group:
    """A permutation group: ``heads`` units permuted as wholes, each made of ``head_dim``
    dimensions permuted within the unit, independently per family and per unit (plain hidden
    units: ``head_dim`` 1 and one family). Every family's axes share the unit permutation; an
    attention layer's families are its q/k dimensions and its v/out dimensions."""

    name: str
    heads: int
    head_dim: int
    families: tuple[tuple[Axis, ...], ...]

    @property
    def size(self) -> int:
        return self.heads * self.head_dim


@dataclass(frozen=True)
class PermutationSpec:
    """An architecture's permutation groups, in forward order, and the state entries left out
    of the matching cost (BatchNorm running statistics: permuted, but not weights to match)."""

    groups: tuple[Group, ...]
    buffers: frozenset[str]

    def entries(self) -> dict[str, list[tuple[Group, int, Axis]]]:
        """Per state entry, the (group, family index, axis) that touch it."""
        out: dict[str, list[tuple[Group, int, Axis]]] = {}
        for g in self.groups:
            for f, family in enumerate(g.families):
                for ax in family:
                    out.setdefault(ax.key, []).append((g, f, ax))
        return out


def check_spec(spec: PermutationSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Every axis names an entry and fits in it; slices of one axis never overlap."""
    taken: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for g in spec.groups:
        if g.size > MAX_GROUP_UNITS:
            raise ValueError(f"permutation spec: group '{g.name}' has {g.size:,} units, more "
                             f"than the {MAX_GROUP_UNITS:,} a cost matrix is built for")
        for ax in (a for family in g.families for a in family):
            shape = shapes.get(ax.key)
            span = (ax.start, ax.start + g.size * ax.unit)
            if shape is None or not 0 <= ax.axis < len(shape) or span[1] > shape[ax.axis]:
                raise ValueError(f"permutation spec: group '{g.name}' axis {ax.axis} of "
                                 f"'{ax.key}' does not fit its shape {shape}")
            taken.setdefault((ax.key, ax.axis), []).append(span)
    for (key, axis), spans in taken.items():
        spans.sort()
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            raise ValueError(f"permutation spec: axis {axis} of '{key}' is in two groups")


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def identity(spec: PermutationSpec) -> Permutation:
    """The permutation that changes nothing."""
    return {g.name: [torch.arange(g.size) for _ in g.families] for g in spec.groups}


def random_permutation(spec: PermutationSpec, seed: Seed) -> Permutation:
    """A uniformly random element of the spec's symmetry group (same seed, same permutation)."""
    rng, out = _rng(seed), {}
    for g in spec.groups:
        heads = rng.permutation(g.heads)
        out[g.name] = [compose(heads, [rng.permutation(g.head_dim) for _ in range(g.heads)],
                               g.head_dim) for _ in g.families]
    return out


def compose(heads: np.ndarray, within: list[np.ndarray], head_dim: int) -> torch.Tensor:
    """The index vector that puts unit ``heads[i]`` at place i, its dimensions in the order
    ``within[i]``: new[i·d + e] = old[heads[i]·d + within[i][e]]."""
    return torch.as_tensor(np.concatenate([heads[i] * head_dim + np.asarray(w)
                                           for i, w in enumerate(within)]), dtype=torch.long)


def permute_tensor(t: torch.Tensor, moves: list[tuple[Axis, torch.Tensor]]) -> torch.Tensor:
    """``t`` with each (axis slice, index vector) applied: new[start + i] = old[start + idx[i]]
    (in units of ``unit`` positions)."""
    full: dict[int, torch.Tensor] = {}
    for ax, idx in moves:
        index = full.setdefault(ax.axis, torch.arange(t.shape[ax.axis]))
        run = torch.arange(ax.unit)
        index[ax.start:ax.start + len(idx) * ax.unit] = (
            ax.start + (idx[:, None] * ax.unit + run).reshape(-1))
    for axis, index in full.items():
        t = t.index_select(axis, index.to(t.device))
    return t


def apply_permutation(state: Mapping[str, torch.Tensor], spec: PermutationSpec,
                      perm: Permutation) -> dict[str, torch.Tensor]:
    """``state`` with ``perm`` applied: permuted entries are new tensors, the others shared."""
    touched = spec.entries()
    return {k: (permute_tensor(v, [(ax, perm[g.name][f]) for g, f, ax in touched[k]])
                if k in touched else v) for k, v in state.items()}
