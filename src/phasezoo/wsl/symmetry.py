"""Permutation symmetries of the catalogue's architectures: augmentation and alignment, on
modules and on zoo rows.

Permuting the hidden units of a network (the rows of one layer, the matching columns of the
next) leaves its function unchanged. Researchers training weight-space models on a zoo expect
two tools built on this, as SANE and the phase-transition zoo ship them: *permutation
augmentation* (a random symmetric copy of a row) and *alignment* (permute one model to best
match another before averaging, interpolating or comparing them).

Two APIs: on modules (:func:`permute_model`, :func:`align_model`) and on zoo rows, the flat
float32 vector and ``layout`` the zoo stores (:func:`permute_row`, :func:`align_row`). Beneath
them: :mod:`phasezoo.wsl.permutation_spec` (the groups and their elements),
:mod:`phasezoo.wsl.permutation_rules` (one rule per module type, MLP, CNN, ResNet with
BatchNorm, ViT and GPT heads) and :mod:`phasezoo.wsl.weight_matching` (git-re-basin's
coordinate descent).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from phasezoo.weights import check_architecture, check_layout, num_values, parse_layout
from phasezoo.wsl.permutation_rules import derive_spec
from phasezoo.wsl.permutation_spec import (PermutationSpec, Seed, apply_permutation, check_spec,
                                           random_permutation)
from phasezoo.wsl.weight_matching import match


def spec_of(model: nn.Module) -> PermutationSpec:
    """The permutation spec of ``model`` (a skeleton on ``meta`` will do), checked against its
    state: every axis exists and holds its group, and no position is in two groups.

    Raises:
        ValueError: naming the module or entry the rules do not cover.
    """
    spec = derive_spec(model)
    check_spec(spec, {k: tuple(t.shape) for k, t in model.state_dict().items()})
    return spec


def has_spec(model: nn.Module) -> bool:
    """Whether :func:`spec_of` covers ``model``."""
    try:
        spec_of(model)
    except ValueError:
        return False
    return True


def permute_model(model: nn.Module, seed: Seed) -> nn.Module:
    """A copy of ``model`` with every group randomly permuted: the same function, other
    weights (permutation augmentation)."""
    spec = spec_of(model)
    return _loaded(model, apply_permutation(model.state_dict(), spec,
                                            random_permutation(spec, seed)))


def align_model(reference: nn.Module, other: nn.Module, max_sweeps: int = 100) -> nn.Module:
    """A copy of ``other`` permuted to best match ``reference``
    (:func:`~phasezoo.wsl.weight_matching.match`); the function it computes is ``other``'s.

    Raises:
        ValueError: if the architecture has no spec, or the two differ in their entries.
    """
    spec = spec_of(other)
    ref, oth = reference.state_dict(), other.state_dict()
    _same_shapes(ref, oth)
    return _loaded(other, apply_permutation(oth, spec, match(ref, oth, spec, max_sweeps)))


def _same_shapes(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> None:
    shapes_a, shapes_b = ({k: tuple(v.shape) for k, v in s.items()} for s in (a, b))
    if shapes_a != shapes_b:
        bad = next((k for k in shapes_b if shapes_a.get(k) != shapes_b[k]), "?")
        raise ValueError(f"align: the models differ at '{bad}' ({shapes_a.get(bad)} vs "
                         f"{shapes_b.get(bad)}): alignment needs one architecture")


def _loaded(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` holding the tensors of ``state`` (assigned, not copied: the copy is
    made on ``meta``, so its own values are never allocated). Entries ``state`` shares with
    ``model`` are cloned, so the two never share storage."""
    memo: dict[int, Any] = {id(p): nn.Parameter(torch.empty_like(p, device="meta"),
                                                 requires_grad=p.requires_grad)
                            for p in model.parameters()}
    memo |= {id(t): torch.empty_like(t, device="meta") for t in model.buffers()}
    out = copy.deepcopy(model, memo)
    own = model.state_dict()
    out.load_state_dict({k: v.clone() if v is own[k] else v for k, v in state.items()},
                        assign=True)
    return out


Layout = Union[str, bytes, Mapping[str, Any]]


def _row_spec(layout: Layout) -> tuple[PermutationSpec, list[dict[str, Any]]]:
    """The spec and entries of a zoo row's layout (its JSON column or the parsed dict), from
    the checked architecture skeleton on ``meta``: nothing in the layout runs as code."""
    parsed = parse_layout(layout) if isinstance(layout, (str, bytes)) else check_layout(
        json.loads(json.dumps(layout)))
    return spec_of(check_architecture(parsed)), parsed["entries"]


def _vector(weights: Any, entries: list[dict[str, Any]]) -> torch.Tensor:
    flat = torch.as_tensor(np.asarray(weights, dtype=np.float32)).reshape(-1)
    if flat.numel() != num_values(entries):
        raise ValueError(f"weights have {flat.numel():,} values, the layout's entries "
                         f"{num_values(entries):,}")
    return flat


def _views(flat: torch.Tensor, entries: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The row's entries as float32 views into ``flat`` (no copy, no dtype round trip)."""
    return {e["name"]: flat[e["offset"]:e["offset"] + int(np.prod(e["shape"]))].reshape(
        e["shape"]) for e in entries}


def _written(flat: torch.Tensor, entries: list[dict[str, Any]],
             state: Mapping[str, torch.Tensor]) -> np.ndarray:
    """A new float32 vector: ``flat`` with the entries of ``state`` written at their places."""
    out = flat.clone()
    views = _views(out, entries)
    for k, v in state.items():
        views[k].copy_(v)
    return out.numpy()


def permute_row(weights: Any, layout: Layout, seed: Seed) -> np.ndarray:
    """A zoo row's weights with every group randomly permuted (permutation augmentation): the
    float32 vector of a model computing the same function, for the same ``layout`` (the
    row's JSON column or its parsed dict). Same seed, same vector."""
    spec, entries = _row_spec(layout)
    flat = _vector(weights, entries)
    state = apply_permutation(_views(flat, entries), spec, random_permutation(spec, seed))
    return _written(flat, entries, _touched(state, spec))


def align_row(reference: Any, other: Any, layout: Layout, max_sweeps: int = 100) -> np.ndarray:
    """Zoo row ``other``'s weights permuted to best match row ``reference`` (same layout) by
    weight matching (:func:`~phasezoo.wsl.weight_matching.match`)."""
    spec, entries = _row_spec(layout)
    ref, oth = _vector(reference, entries), _vector(other, entries)
    ref_state, oth_state = _views(ref, entries), _views(oth, entries)
    perm = match(ref_state, oth_state, spec, max_sweeps)
    return _written(oth, entries, _touched(apply_permutation(oth_state, spec, perm), spec))


def _touched(state: Mapping[str, torch.Tensor], spec: PermutationSpec) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that the spec permutes."""
    touched = spec.entries()
    return {k: v for k, v in state.items() if k in touched}
