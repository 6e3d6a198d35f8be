"""Flat float32 weight vectors and their layout: the bridge between a model and a zoo row.

A model's whole ``state_dict`` (parameters and buffers, BatchNorm statistics included) is stored
as one float32 vector plus a JSON-able layout (name, shape, offset, dtype of each entry), so a
row of a published zoo can be turned back into the exact module that produced its metrics.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as _module

# A row's layout is untrusted input (zoos are downloaded), so it is bounded before it is parsed
# or built: the catalogue's largest (ResNet-50 at width 256) is 35 KB of JSON and 320 entries.
MAX_LAYOUT_BYTES = 1 << 20
MAX_LAYOUT_ENTRIES = 10_000


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
        ValueError: if the layout is malformed (:func:`check_layout`), the vector's length does
            not match it, or its entries do not match the architecture's tensors (names,
            shapes).
    """
    entries = check_layout(layout)["entries"]
    length = len(flat) if not torch.is_tensor(flat) else flat.numel()
    if length != num_values(entries):
        raise ValueError(f"weights have {length:,} values, the layout's entries "
                         f"{num_values(entries):,}")
    model = check_architecture(layout)
    flat = (flat.detach().to("cpu", torch.float32).clone() if torch.is_tensor(flat)
            else torch.from_numpy(np.array(flat, dtype=np.float32)))  # np.array copies
    model.load_state_dict(unflatten_state(flat, entries), assign=True)
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"layout of '{layout['architecture']['name']}' holds no values for "
                         f"{left[:3]} (a non-persistent buffer?)")
    return model.eval()


def check_architecture(layout: dict[str, Any]) -> nn.Module:
    """The layout's architecture on ``meta`` (:func:`skeleton`), checked to hold exactly the
    layout's entries (names, shapes): what :func:`build_model` and ``phasezoo verify`` build.

    Raises:
        ValueError: naming the first tensor that differs.
    """
    model = skeleton(layout)
    _check_entries(model, layout["entries"], layout["architecture"]["name"])
    return model


def _check_entries(model: nn.Module, entries: list[dict[str, Any]], name: str) -> None:
    """The layout's entries are exactly the (meta) architecture's state: names and shapes."""
    expected = {k: list(t.shape) for k, t in model.state_dict().items()}
    given = {e["name"]: list(e["shape"]) for e in entries}
    if len(entries) != len(given):
        raise ValueError(f"layout entries of architecture '{name}' name a tensor twice")
    if given != expected:
        bad = next((k for k in expected if given.get(k) != expected[k]),
                   next(iter(set(given) - set(expected)), "?"))
        raise ValueError(f"layout entries do not match architecture '{name}': '{bad}' is "
                         f"{given.get(bad)} in the layout, {expected.get(bad)} in the model")


def skeleton(layout: dict[str, Any]) -> nn.Module:
    """The layout's architecture on the ``meta`` device: names and shapes, no memory, no init.

    Built within the layout's own size (:func:`_within`): a crafted layout naming an
    architecture far larger than its entries (``depth`` 100,000) is refused at its first tensors
    past them, not after seconds and gigabytes of building modules.

    Raises:
        ValueError: if the architecture outgrows the layout or cannot be built from its kwargs.
    """
    from phasezoo.models import create_model

    arch, entries = layout["architecture"], layout["entries"]
    values = num_values(entries)
    _check_kwargs(arch, len(entries), values)
    try:
        with _within(len(entries), values, arch["name"]), torch.device("meta"):
            return create_model(arch["name"], **arch["kwargs"])
    except _Outgrown:
        raise
    except (TypeError, ValueError, OverflowError, RuntimeError) as e:  # kwargs not the model's
        raise ValueError(f"layout: architecture '{arch['name']}' cannot be built from "
                         f"{json.dumps(arch['kwargs'])[:200]} ({e})") from None


class _Outgrown(ValueError):
    """An architecture registered more tensors or values than its layout holds."""


@contextmanager
def _within(tensors: int, values: int, name: str) -> Iterator[None]:
    """Raise once the modules built inside register more tensors or values than a layout of
    ``tensors`` entries and ``values`` values can hold (with slack: torchvision's ViT registers
    two tensors it then replaces). Uses torch's global registration hooks, removed on exit."""
    limits, seen = (2 * tensors + 16, 2 * values + (1 << 16)), [0, 0]

    def count(module: nn.Module, key: str, tensor: torch.Tensor | None) -> None:
        if tensor is not None:
            seen[0], seen[1] = seen[0] + 1, seen[1] + tensor.numel()
        if seen[0] > limits[0] or seen[1] > limits[1]:
            raise _Outgrown(f"layout: architecture '{name}' outgrows its {tensors:,} entries "
                             f"of {values:,} values (its kwargs describe a larger model)")

    hooks = [_module.register_module_parameter_registration_hook(count),
             _module.register_module_buffer_registration_hook(count)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _natural(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_kwargs(arch: dict[str, Any], tensors: int, values: int) -> None:
    """Every integer of the architecture's kwargs is at most the layout's values (a model holds
    at least one value per unit, class or input feature) and ``depth`` at most its entries (one
    per layer at least): builders allocate per-layer lists before any tensor is registered."""
    def ints(v: Any) -> Iterator[int]:
        if isinstance(v, int) and not isinstance(v, bool):
            yield v
        elif isinstance(v, (list, tuple)):
            for x in v:
                yield from ints(x)

    kwargs = arch["kwargs"]
    bad = next((k for k, v in kwargs.items() if any(abs(x) > values for x in ints(v))), None)
    if bad is None and _natural(kwargs.get("depth")) and kwargs["depth"] > tensors:
        bad = "depth"
    if bad is not None:
        raise ValueError(f"layout: architecture '{arch['name']}' kwarg {bad}="
                         f"{json.dumps(kwargs[bad])[:100]} is too large for its {tensors:,} "
                         f"entries of {values:,} values")


def parse_layout(text: str | bytes) -> dict[str, Any]:
    """A row's ``layout`` column (JSON) as a checked layout (:func:`check_layout`); its size is
    bounded before it is parsed.

    Raises:
        ValueError: starting ``layout:``, saying what is wrong.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode())
    if size > MAX_LAYOUT_BYTES:
        raise ValueError(f"layout: {size:,} bytes of JSON, more than a layout may hold "
                         f"({MAX_LAYOUT_BYTES:,})")
    try:
        layout = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"layout: not valid JSON ({str(e)[:100]})") from None
    return check_layout(layout)


def check_layout(layout: Any) -> dict[str, Any]:
    """``layout`` itself if it is ``{architecture: {name, kwargs}, entries: [...]}`` with at most
    :data:`MAX_LAYOUT_ENTRIES` entries that tile the weights (:func:`num_values`).

    Raises:
        ValueError: starting ``layout:``, saying what is wrong.
    """
    arch = layout.get("architecture") if isinstance(layout, dict) else None
    if not (isinstance(arch, dict) and isinstance(arch.get("name"), str)
            and isinstance(arch.get("kwargs"), dict)):
        raise ValueError("layout: 'architecture' must be {name: str, kwargs: {...}}")
    entries = layout.get("entries")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_LAYOUT_ENTRIES:
        raise ValueError(f"layout: 'entries' must be a list of 1 to {MAX_LAYOUT_ENTRIES:,} "
                         "entries")
    num_values(entries)
    return layout


def num_values(layout: list[dict[str, Any]]) -> int:
    """Length of the flat vector that ``layout`` describes, checked to tile it exactly: each
    entry starts where the previous one ends (the first at 0), so no two share a value.

    Why checked: offsets come from downloaded rows, and entries that overlap would load one
    tensor's weights into another while every length still matched.

    Raises:
        ValueError: naming the first entry that is malformed or out of place.
    """
    total = 0
    for i, e in enumerate(layout):
        _check_entry(e, i)
        if e["offset"] != total:
            raise ValueError(f"layout: entry '{e['name']}' starts at offset {e['offset']:,}, "
                             f"not {total:,} (entries must tile the weights in order, without "
                             "gaps or overlaps)")
        total += math.prod(e["shape"])
    return total


def _check_entry(e: Any, i: int) -> None:
    """One layout entry is ``{name: str, shape: [int ≥ 0, ...], offset: int, dtype: a torch
    dtype}``."""
    ok = (isinstance(e, dict) and isinstance(e.get("name"), str)
          and isinstance(e.get("shape"), list) and len(e["shape"]) <= 8
          and all(_natural(d) for d in e["shape"]) and _natural(e.get("offset"))
          and isinstance(e.get("dtype"), str)
          and isinstance(getattr(torch, e["dtype"], None), torch.dtype))
    if not ok:
        raise ValueError(f"layout: entry {i} is not {{name, shape: [int ≥ 0], offset: int ≥ 0, "
                         "dtype: a torch dtype}")


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
