"""Permutation symmetries of the catalogue's architectures: augmentation and weight matching.

Permuting the hidden units of a network (the rows of one layer, the matching columns of the
next) leaves its function unchanged. Researchers training weight-space models on a zoo expect
two tools built on this, as SANE and the phase-transition zoo ship them: *permutation
augmentation* (a random symmetric copy of a row) and *alignment* (permute one model to best
match another before averaging, interpolating or comparing them).

A :class:`PermutationSpec` lists an architecture's permutation groups and, for each group, the
(state-dict entry, axis) pairs it permutes, as git-re-basin's ``PermutationSpec`` does
(Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin", github.com/samuela/git-re-basin,
``src/weight_matching.py``). Specs are derived from the module tree (:func:`spec_of`), one
handler per module type, so each block of :mod:`phasezoo.models` declares its own symmetry:

- a Linear/Conv2d output channel with its bias and the BatchNorm that follows (weights, biases
  and running statistics), and the next layer's input columns (a Flatten after a conv makes
  each channel a run of consecutive columns);
- a ResNet stage's residual stream: every block output joined by an identity skip is one group;
- a transformer's residual stream (embeddings, every LayerNorm, every projection into or out of
  it), each block's MLP hidden units, and each attention layer's heads, with the within-head
  dimensions of q/k and of v/out permuted independently per head.

Weight matching (:func:`match`) is git-re-basin's coordinate descent: each group in turn gets
the permutation maximising Σ ⟨W_ref, P·W_other⟩ over its entries with the others held fixed
(``scipy.optimize.linear_sum_assignment``), until a sweep improves nothing. The first sweep goes
input to output and matches each group by what produces its units (a layer's incoming weights
and bias, the normalisation after it), in entries whose other groups are already matched: on its
own (``max_sweeps=1``) it is the one-pass matching of a chain, layer by layer, that
:mod:`phasezoo.wsl.studies` runs. An
attention group is matched exactly under its structure: the value of pairing two heads is the
best within-head assignment of q/k plus that of v/out, and the heads are assigned on those
values.

Two APIs: on modules (:func:`permute_model`, :func:`align_model`) and on zoo rows, the flat
float32 vector and ``layout`` the zoo stores (:func:`permute_row`, :func:`align_row`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from phasezoo.models import GPT, BasicBlock, Bottleneck
from phasezoo.weights import check_architecture, check_layout, num_values, parse_layout

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


_NEW = object()  # a layer's output opens a new group (else it joins the given one, or None)
Handler = Callable[["_Builder", nn.Module, str, Union[str, None]], Union[str, None]]


class _Builder:
    """Collects groups while the module tree is walked; a group is referred to by its name, and
    ``None`` stands for axes that are not permuted (the input, the logits)."""

    def __init__(self) -> None:
        self.axes: dict[str, list[Axis]] = {}
        self.sizes: dict[str, int] = {}
        self.structured: dict[str, Group] = {}
        self.buffers: set[str] = set()

    def new(self, name: str, size: int) -> str:
        if name in self.sizes:
            raise ValueError(f"permutation spec: group '{name}' declared twice")
        self.axes[name], self.sizes[name] = [], size
        return name

    def add(self, group: str | None, key: str, axis: int, start: int = 0, unit: int = 1,
            produces: bool = True) -> None:
        if group is not None:
            self.axes[group].append(Axis(key, axis, start, unit, produces))

    def unit_of(self, group: str, features: int, where: str) -> int:
        """Consecutive positions per unit when ``features`` inputs carry ``group``'s units."""
        if features % self.sizes[group]:
            raise ValueError(f"permutation spec: '{where}' has {features} inputs, not a multiple "
                             f"of the {self.sizes[group]} units of group '{group}'")
        return features // self.sizes[group]

    def spec(self, output: str | None) -> PermutationSpec:
        """The spec, without ``output`` (the logits' group: a model's outputs are fixed)."""
        groups = [self.structured.get(n) or Group(n, self.sizes[n], 1, (tuple(self.axes[n]),))
                  for n in self.sizes if n != output]
        return PermutationSpec(tuple(g for g in groups if g.size > 1), frozenset(self.buffers))


def _weighted(b: _Builder, m: nn.Module, prefix: str, g_in: str | None,
              out: object = _NEW) -> str | None:
    """A Linear or Conv2d: its inputs carry ``g_in``; its outputs open a new group, or join
    ``out`` (a residual stream's group, or None)."""
    if isinstance(m, nn.Conv2d) and m.groups != 1:
        raise ValueError(f"permutation spec: grouped convolution '{prefix}' is not supported")
    if g_in is not None:
        features = m.in_features if isinstance(m, nn.Linear) else m.in_channels
        b.add(g_in, prefix + "weight", 1, unit=b.unit_of(g_in, features, prefix + "weight"),
              produces=False)
    size = m.out_features if isinstance(m, nn.Linear) else m.out_channels
    g_out = b.new(prefix.rstrip("."), size) if out is _NEW else out
    if g_out is not None and b.sizes[g_out] != size:
        raise ValueError(f"permutation spec: '{prefix}weight' has {size} outputs, group "
                         f"'{g_out}' {b.sizes[g_out]}")
    b.add(g_out, prefix + "weight", 0)
    if m.bias is not None:
        b.add(g_out, prefix + "bias", 0)
    return g_out


def _norm(b: _Builder, m: nn.Module, prefix: str, g_in: str | None) -> str | None:
    """BatchNorm or LayerNorm over the channel axis: its affine parameters and running
    statistics follow the channels (LayerNorm's mean and variance are symmetric in them)."""
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) != 1:
        raise ValueError(f"permutation spec: LayerNorm '{prefix}' over several axes")
    for name, _ in (*m.named_parameters(), *m.named_buffers()):
        if name != "num_batches_tracked":
            b.add(g_in, prefix + name, 0)
            if name.startswith("running_"):
                b.buffers.add(prefix + name)
    return g_in


def _same(b: _Builder, m: nn.Module, prefix: str, g_in: str | None) -> str | None:
    """An elementwise activation, a pooling or a flatten: channels keep their places."""
    return g_in


def _chain(b: _Builder, m: nn.Module, prefix: str, g_in: str | None) -> str | None:
    """A Sequential: its children in order, each output the next's input."""
    for name, child in m.named_children():
        g_in = _walk(b, child, f"{prefix}{name}.", g_in)
    return g_in


def _residual(b: _Builder, m: nn.Module, prefix: str, g_in: str | None) -> str | None:
    """A ResNet block (BasicBlock: conv1–2, Bottleneck: conv1–3, each with its bnK): the last
    conv's output is added to the skip path, so both share a group — the input's own group
    under an identity skip (a stage's residual stream), a new one under a projection."""
    convs = [n for n, _ in m.named_children() if n.startswith("conv")]
    g = g_in
    for name in convs[:-1]:
        g = _weighted(b, getattr(m, name), f"{prefix}{name}.", g)
        g = _norm(b, getattr(m, "bn" + name[4:]), f"{prefix}bn{name[4:]}.", g)
    skip = g_in if len(m.shortcut) == 0 else _chain(b, m.shortcut, prefix + "shortcut.", g_in)
    last = convs[-1]
    _weighted(b, getattr(m, last), f"{prefix}{last}.", g, out=skip)
    return _norm(b, getattr(m, "bn" + last[4:]), f"{prefix}bn{last[4:]}.", skip)


_HANDLERS: dict[type, Handler] = {
    nn.Linear: _weighted, nn.Conv2d: _weighted,
    nn.BatchNorm1d: _norm, nn.BatchNorm2d: _norm, nn.LayerNorm: _norm,
    nn.Sequential: _chain, BasicBlock: _residual, Bottleneck: _residual,
    **{t: _same for t in (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.Identity,
                          nn.Dropout, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d,
                          nn.AdaptiveAvgPool2d)},
}


def _walk(b: _Builder, m: nn.Module, prefix: str, g_in: str | None) -> str | None:
    handler = _HANDLERS.get(type(m))  # exact type: a subclass may compute something else
    if handler is None:
        raise ValueError(f"permutation spec: no rule for module '{prefix.rstrip('.')}' of type "
                         f"{type(m).__name__}")
    return handler(b, m, prefix, g_in)


def _attention(b: _Builder, name: str, heads: int, res: str, in_w: str, in_b: str | None,
               out_w: str) -> None:
    """A multi-head attention with fused q, k, v projection ``in_w`` (rows q | k | v, each
    ``heads`` × head_dim) and output projection ``out_w``: heads permute as wholes; within a
    head, q/k dimensions (q·k is unchanged) and v/out dimensions permute independently."""
    width = b.sizes[res]
    if width % heads:
        raise ValueError(f"permutation spec: '{name}' has {heads} heads for width {width}")
    b.add(res, in_w, 1, produces=False)
    b.add(res, out_w, 0)
    biases = in_b is not None
    qk = (Axis(in_w, 0), Axis(in_w, 0, width)) + ((Axis(in_b, 0), Axis(in_b, 0, width))
                                                   if biases else ())
    v = (Axis(in_w, 0, 2 * width),) + ((Axis(in_b, 0, 2 * width),) if biases else ())
    v += (Axis(out_w, 1, produces=False),)
    b.new(name, width)
    b.structured[name] = Group(name, heads, width // heads, (qk, v))


def _block_mlp(b: _Builder, first: nn.Linear, second: nn.Linear, names: tuple[str, str],
               res: str) -> None:
    """A transformer block's MLP (two Linear layers, state prefixes ``names``) on stream
    ``res``: its hidden units are one group."""
    _weighted(b, second, names[1], _weighted(b, first, names[0], res), out=res)


def _gpt(model: GPT) -> PermutationSpec:
    """:class:`phasezoo.models.GPT`: residual stream, per block heads and MLP units."""
    b = _Builder()
    res = b.new("residual", model.tok.embedding_dim)
    b.add(res, "tok.weight", 1)
    b.add(res, "pos.weight", 1)
    for i, block in enumerate(model.blocks):
        p = f"blocks.{i}."
        _norm(b, block.ln1, p + "ln1.", res)
        _attention(b, p + "attn", block.attn.heads, res, p + "attn.qkv.weight",
                   p + "attn.qkv.bias", p + "attn.proj.weight")
        b.add(res, p + "attn.proj.bias", 0)
        _norm(b, block.ln2, p + "ln2.", res)
        _block_mlp(b, block.mlp[0], block.mlp[2], (p + "mlp.0.", p + "mlp.2."), res)
    _norm(b, model.ln_f, "ln_f.", res)
    return b.spec(_weighted(b, model.head, "head.", res))


def _vit(model: nn.Module) -> PermutationSpec:
    """torchvision's VisionTransformer: residual stream (patch embedding, class token,
    positions), per encoder block heads and MLP units, then its head layers as a chain."""
    b = _Builder()
    res = _weighted(b, model.conv_proj, "conv_proj.", None,
                    out=b.new("residual", model.conv_proj.out_channels))
    b.add(res, "class_token", 2)
    b.add(res, "encoder.pos_embedding", 2)
    for name, block in model.encoder.layers.named_children():
        p, attn = f"encoder.layers.{name}.", block.self_attention
        if not attn._qkv_same_embed_dim:
            raise ValueError(f"permutation spec: '{p}self_attention' has separate q, k, v weights")
        _norm(b, block.ln_1, p + "ln_1.", res)
        _attention(b, p + "self_attention", attn.num_heads, res,
                   p + "self_attention.in_proj_weight",
                   p + "self_attention.in_proj_bias" if attn.in_proj_bias is not None else None,
                   p + "self_attention.out_proj.weight")
        if attn.out_proj.bias is not None:
            b.add(res, p + "self_attention.out_proj.bias", 0)
        _norm(b, block.ln_2, p + "ln_2.", res)
        _block_mlp(b, block.mlp[0], block.mlp[3], (p + "mlp.0.", p + "mlp.3."), res)
    _norm(b, model.encoder.ln, "encoder.ln.", res)
    return b.spec(_chain(b, model.heads, "heads.", res))


def _sequential(model: nn.Module) -> PermutationSpec:
    """A Sequential of layers and blocks (mlp, cnn, pinn-mlp, the ResNets)."""
    b = _Builder()
    return b.spec(_chain(b, model, "", None))


def _builders() -> dict[type, Callable[[nn.Module], PermutationSpec]]:
    from torchvision.models import VisionTransformer

    return {nn.Sequential: _sequential, GPT: _gpt, VisionTransformer: _vit}


def spec_of(model: nn.Module) -> PermutationSpec:
    """The permutation spec of ``model`` (a skeleton on ``meta`` will do), checked against its
    state: every axis exists and holds its group, and no position is in two groups.

    Raises:
        ValueError: naming the module or entry the rules do not cover.
    """
    build = _builders().get(type(model))
    if build is None:
        raise ValueError(f"permutation spec: no rule for architecture {type(model).__name__}")
    spec = build(model)
    _check_spec(spec, {k: tuple(t.shape) for k, t in model.state_dict().items()})
    return spec


def has_spec(model: nn.Module) -> bool:
    """Whether :func:`spec_of` covers ``model``."""
    try:
        spec_of(model)
    except ValueError:
        return False
    return True


def _check_spec(spec: PermutationSpec, shapes: Mapping[str, tuple[int, ...]]) -> None:
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
        out[g.name] = [_compose(heads, [rng.permutation(g.head_dim) for _ in range(g.heads)],
                                g.head_dim) for _ in g.families]
    return out


def _compose(heads: np.ndarray, within: list[np.ndarray], head_dim: int) -> torch.Tensor:
    """The index vector that puts unit ``heads[i]`` at place i, its dimensions in the order
    ``within[i]``: new[i·d + e] = old[heads[i]·d + within[i][e]]."""
    return torch.as_tensor(np.concatenate([heads[i] * head_dim + np.asarray(w)
                                           for i, w in enumerate(within)]), dtype=torch.long)


def _permute(t: torch.Tensor, moves: list[tuple[Axis, torch.Tensor]]) -> torch.Tensor:
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
    return {k: (_permute(v, [(ax, perm[g.name][f]) for g, f, ax in touched[k]])
                if k in touched else v) for k, v in state.items()}


def _features(t: torch.Tensor, ax: Axis, units: int) -> torch.Tensor:
    """The slice of ``t`` an axis covers as ``units`` rows, one per index of its group."""
    return t.movedim(ax.axis, 0)[ax.start:ax.start + units * ax.unit].reshape(units, -1)


def _costs(ref: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
           spec: PermutationSpec, perm: Permutation, g: Group,
           seen: set[str] | None) -> list[torch.Tensor | None]:
    """Per family of ``g``: Σ ⟨ref row i, other row j⟩ over its axes, ``other`` permuted by
    every other group. With ``seen`` (the forward sweep): only the axes that produce the units,
    in entries whose other groups are all in ``seen`` (already matched)."""
    touched, out = spec.entries(), []
    for family in g.families:
        cost = None
        for ax in family:
            if ax.key in spec.buffers or (seen is not None and not (
                    ax.produces and all(h.name in seen for h, _, _ in touched[ax.key]))):
                continue
            moves = [(a, perm[h.name][f]) for h, f, a in touched[ax.key]
                     if not (h is g and a.axis == ax.axis)]
            r, o = _features(ref[ax.key], ax, g.size), _features(_permute(other[ax.key], moves),
                                                                 ax, g.size)
            term = r.float() @ o.float().T
            cost = term if cost is None else cost + term
        out.append(cost)
    return out


def _lsa(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost, maximize=True)[1]


def _assign(costs: list[np.ndarray], g: Group) -> list[torch.Tensor]:
    """The best index vectors of ``g`` for these family costs: for whole units, one assignment
    on the summed costs; for heads, each pair of heads scored by its best within-head
    assignments (per family), then the heads assigned on those scores."""
    d = g.head_dim
    if d == 1:
        best = _lsa(sum(costs))
        return [torch.as_tensor(best, dtype=torch.long) for _ in costs]
    score, within = np.zeros((g.heads, g.heads)), {}
    for f, c in enumerate(costs):
        for i in range(g.heads):
            for j in range(g.heads):
                block = c[i * d:(i + 1) * d, j * d:(j + 1) * d]
                within[f, i, j] = _lsa(block)
                score[i, j] += block[np.arange(d), within[f, i, j]].sum()
    heads = _lsa(score)
    return [_compose(heads, [within[f, i, heads[i]] for i in range(g.heads)], d)
            for f in range(len(costs))]


def _value(costs: list[np.ndarray], idx: list[torch.Tensor]) -> float:
    return float(sum(c[np.arange(len(c)), i.numpy()].sum() for c, i in zip(costs, idx, strict=True)))


@torch.no_grad()
def match(reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
          spec: PermutationSpec, max_sweeps: int = 100) -> Permutation:
    """The permutation of ``other`` that best matches ``reference`` by weight matching
    (git-re-basin's coordinate descent, see the module docstring): after the forward first
    sweep, groups are revisited in order until a sweep changes none (a change must raise the
    objective by more than rounding) or ``max_sweeps`` sweeps. Deterministic."""
    perm = identity(spec)
    for sweep in range(max_sweeps):
        changed, seen = False, set()
        for g in spec.groups:
            seen.add(g.name)
            found = _costs(reference, other, spec, perm, g, None if sweep else seen)
            if all(c is None for c in found):
                continue  # nothing of it is matched yet (forward sweep): keep it as it is
            costs = [np.zeros((g.size, g.size)) if c is None else c.double().cpu().numpy()
                     for c in found]
            new = _assign(costs, g)
            old_value, new_value = _value(costs, perm[g.name]), _value(costs, new)
            if new_value > old_value + 1e-12 * max(1.0, abs(old_value)):
                perm[g.name], changed = new, True
        if sweep > 0 and not changed:
            break
    return perm


def permute_model(model: nn.Module, seed: Seed) -> nn.Module:
    """A copy of ``model`` with every group randomly permuted: the same function, other
    weights (permutation augmentation)."""
    spec = spec_of(model)
    return _loaded(model, apply_permutation(model.state_dict(), spec,
                                            random_permutation(spec, seed)))


def align_model(reference: nn.Module, other: nn.Module, max_sweeps: int = 100) -> nn.Module:
    """A copy of ``other`` permuted to best match ``reference`` (:func:`match`); the function
    it computes is ``other``'s.

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
    weight matching (:func:`match`)."""
    spec, entries = _row_spec(layout)
    ref, oth = _vector(reference, entries), _vector(other, entries)
    ref_state, oth_state = _views(ref, entries), _views(oth, entries)
    perm = match(ref_state, oth_state, spec, max_sweeps)
    return _written(oth, entries, _touched(apply_permutation(oth_state, spec, perm), spec))


def _touched(state: Mapping[str, torch.Tensor], spec: PermutationSpec) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that the spec permutes."""
    touched = spec.entries()
    return {k: v for k, v in state.items() if k in touched}
