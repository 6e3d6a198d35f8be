"""The per-architecture permutation rules: a module tree's
:class:`~phasezoo.wsl.permutation_spec.PermutationSpec`, derived by one handler per module type,
so each block of :mod:`phasezoo.models` declares its own symmetry.

- a Linear/Conv2d output channel with its bias and the BatchNorm that follows (weights, biases
  and running statistics), and the next layer's input columns (a Flatten after a conv makes
  each channel a run of consecutive columns);
- a ResNet stage's residual stream: every block output joined by an identity skip is one group;
- a transformer's residual stream (embeddings, every LayerNorm, every projection into or out of
  it), each block's MLP hidden units, and each attention layer's heads, with the within-head
  dimensions of q/k and of v/out permuted independently per head.

:func:`derive_spec` applies them; :func:`phasezoo.wsl.symmetry.spec_of` checks the result
against the model's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

from torch import nn

from phasezoo.models import GPT, BasicBlock, Bottleneck
from phasezoo.wsl.permutation_spec import Axis, Group, PermutationSpec

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


def derive_spec(model: nn.Module) -> PermutationSpec:
    """The permutation spec the rules give ``model`` (a skeleton on ``meta`` will do), not yet
    checked against its state (:func:`phasezoo.wsl.symmetry.spec_of` does that).

    Raises:
        ValueError: naming the architecture or module the rules do not cover.
    """
    build = _builders().get(type(model))
    if build is None:
        raise ValueError(f"permutation spec: no rule for architecture {type(model).__name__}")
    return build(model)
