"""Flat float32 weight vectors and their layout: the bridge between a model and a zoo row.

A model's whole ``state_dict`` (parameters and buffers, BatchNorm statistics included) is stored
as one float32 vector plus a JSON-able layout (name, shape, offset, dtype of each entry), so a
row of a published zoo can be turned back into the exact module that produced its metrics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn


def layout_of(model: nn.Module) -> list[dict[str, Any]]:
    """Name, shape, offset and dtype of every ``state_dict`` entry, in order."""
    entries, offset = [], 0
    params = {n for n, _ in model.named_parameters()}
    for name, t in model.state_dict().items():
        n = math.prod(t.shape)
        entries.append({"name": name, "shape": list(t.shape), "offset": offset,
                        "dtype": str(t.dtype).removeprefix("torch."),
                        "kind": "parameter" if name in params else "buffer"})
        offset += n
    return entries


def describe(model: nn.Module, architecture: dict[str, Any]) -> dict[str, Any]:
    """The full layout of a model: how to build it (registry name and arguments) and its entries.

    ``architecture`` is ``{"name": ..., "kwargs": {...}}`` as passed to ``create_model``.
    """
    return {"architecture": architecture, "entries": layout_of(model)}


def build_model(layout: dict[str, Any], flat: torch.Tensor | Any) -> nn.Module:
    """A working module in eval mode from a layout (see :func:`describe`) and a flat vector.

    The module is built on the ``meta`` device and takes one private float32 copy of ``flat`` as
    its storage (``load_state_dict(assign=True)``): peak memory is the caller's vector plus one
    row, and no time goes into an initialisation that would be overwritten (a ResNet-50 at width
    256 has 376M values). The copy keeps the module independent of ``flat``, which may be a
    read-only view of a memory-mapped zoo.

    A row is untrusted input (zoos are downloaded): its length is checked against the layout,
    and the layout against the architecture it names (built on ``meta``, no memory), before
    any value is copied.

    Raises:
        ValueError: if the vector's length does not match the layout, or the layout's entries
            do not match the architecture's tensors (names, shapes).
    """
    entries = layout["entries"]
    length = len(flat) if not torch.is_tensor(flat) else flat.numel()
    if length != num_values(entries):
        raise ValueError(f"weights have {length:,} values, the layout's entries "
                         f"{num_values(entries):,}")
    model = skeleton(layout)
    _check_entries(model, entries, layout["architecture"]["name"])
    flat = (flat.detach().to("cpu", torch.float32).clone() if torch.is_tensor(flat)
            else torch.from_numpy(np.array(flat, dtype=np.float32)))  # np.array copies
    model.load_state_dict(unflatten_state(flat, entries), assign=True)
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"layout of '{layout['architecture']['name']}' holds no values for "
                         f"{left[:3]} (a non-persistent buffer?)")
    return model.eval()


def _check_entries(model: nn.Module, entries: list[dict[str, Any]], name: str) -> None:
    """The layout's entries are exactly the (meta) architecture's state: names and shapes."""
    expected = {k: list(t.shape) for k, t in model.state_dict().items()}
    given = {e["name"]: list(e["shape"]) for e in entries}
    if given != expected:
        bad = next((k for k in expected if given.get(k) != expected[k]),
                   next(iter(set(given) - set(expected)), "?"))
        raise ValueError(f"layout entries do not match architecture '{name}': '{bad}' is "
                         f"{given.get(bad)} in the layout, {expected.get(bad)} in the model")


def skeleton(layout: dict[str, Any]) -> nn.Module:
    """The layout's architecture on the ``meta`` device: names and shapes, no memory, no init."""
    from phasezoo.models import create_model

    arch = layout["architecture"]
    with torch.device("meta"):
        return create_model(arch["name"], **arch["kwargs"])


def num_values(layout: list[dict[str, Any]]) -> int:
    """Length of the flat vector that ``layout`` describes."""
    last = layout[-1]
    return last["offset"] + math.prod(last["shape"])


def flatten_state(model: nn.Module) -> torch.Tensor:
    """The whole ``state_dict`` as one float32 CPU vector (integer buffers cast exactly)."""
    return torch.cat([t.detach().reshape(-1).to("cpu", torch.float32)
                      for t in model.state_dict().values()])


def unflatten_state(flat: torch.Tensor, layout: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Invert :func:`flatten_state`: a ``state_dict`` with the original shapes and dtypes.

    Raises:
        ValueError: if the vector's length does not match the layout.
    """
    flat = torch.as_tensor(flat)
    if flat.numel() != num_values(layout):
        raise ValueError(f"weights have {flat.numel()} values, layout expects {num_values(layout)}")
    state = {}
    for e in layout:
        n = math.prod(e["shape"])
        chunk = flat[e["offset"]:e["offset"] + n].reshape(e["shape"])
        state[e["name"]] = chunk.to(getattr(torch, e["dtype"]))
    return state
