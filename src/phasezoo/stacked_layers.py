"""The grouped forms of the registry's layers: how each layer runs for K stacked members at once.

Each supported layer type has a handler (registered with :func:`_handles`) that applies the
layer of every member in one op: Linear → a batched GEMM over a ``[K, B, F]`` batch; Conv2d → one
convolution with ``groups=K`` over ``[B, K·C, H, W]`` (channels-last where safe); BatchNorm2d →
one ``batch_norm`` over the ``K·C`` channels, which is exactly per-member BatchNorm because its
statistics are per channel; the GPT decoder's and the ViT encoder's tokens run as
``[K, B, T, d]`` (per-member embedding lookups, LayerNorm affines and attention projections;
attention batched over members × sequences). Members never mix: every grouped op is
block-diagonal over members, so a member that diverges (NaN) cannot disturb the others.
:class:`phasezoo.stacked.StackedModel` holds the parameters and walks the template through these
handlers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn
from torch.nn import functional as F

from phasezoo.models import GPT, BasicBlock, Bottleneck, CausalSelfAttention, DecoderBlock

if TYPE_CHECKING:
    from phasezoo.stacked import StackedModel

Handler = Callable[["StackedModel", nn.Module, str, torch.Tensor], torch.Tensor]
HANDLERS: dict[type, Handler] = {}  # layer type → its grouped form


def _handles(*types: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = fn
        return fn
    return register


def unsupported_modules(model: nn.Module) -> list[str]:
    """Names (``path: Type``) of the modules that have no grouped form; empty if all have one."""
    bad = []
    for name, m in model.named_modules():
        if type(m) not in HANDLERS or not _SUPPORTED_CONFIG.get(type(m), lambda _: True)(m):
            bad.append(f"{name or '<root>'}: {type(m).__name__}")
    return bad


def _plain_bn(m: nn.BatchNorm2d) -> bool:
    """The BatchNorm the stacked form implements: affine, running statistics, fixed momentum."""
    return m.affine and m.track_running_stats and m.momentum is not None


def _plain_mha(m: nn.MultiheadAttention) -> bool:
    """The attention the stacked form implements: batch-first, packed in-projection with bias,
    no extra key/value biases, zero-attention or dropout (torchvision's ViT encoder)."""
    return (m.batch_first and m._qkv_same_embed_dim and m.in_proj_bias is not None
            and m.bias_k is None and not m.add_zero_attn and m.dropout == 0.0)


# Module types whose grouped form covers only some configurations (others are "unsupported").
_SUPPORTED_CONFIG: dict[type, Callable[[nn.Module], bool]] = {
    nn.Conv2d: lambda m: m.padding_mode == "zeros",  # F.conv2d pads with zeros only
    nn.BatchNorm2d: _plain_bn,
    nn.MultiheadAttention: _plain_mha,
    nn.Dropout: lambda m: m.p == 0.0,  # random masks would differ from the per-member loop's
}


# ---- grouped forms of the registry's layers ----------------------------------------------
def _to_grouped_channels(s: StackedModel, h: torch.Tensor) -> torch.Tensor:
    """``[K, B, C, H, W]`` → ``[B, K·C, H, W]``; a 4-D input is returned as it is.

    Channels-last memory order makes the grouped convolution ~2× faster on the CPU, and is used
    for models without BatchNorm. With BatchNorm it is not: torch 2.14's CPU ``batch_norm``
    backward returns a wrong weight gradient for channels-last input (100% off a float64
    reference), and working around it by converting around each BatchNorm left the stem
    convolution's gradient 3.6e-4 off (contiguous: 2e-5). ``tests/test_stacked.py::
    test_stacked_gradients_match_float64`` holds every architecture to 1e-4.
    """
    if h.dim() == 4:
        return h
    k, b = h.shape[:2]
    h = h.transpose(0, 1).reshape(b, k * h.shape[2], *h.shape[3:])
    return h.contiguous(memory_format=torch.channels_last if s.channels_last
                        else torch.contiguous_format)


def _pools_before_relu(first: nn.Module, second: nn.Module) -> bool:
    """Whether ``ReLU → MaxPool2d`` may run as ``MaxPool2d → ReLU``.

    Why: max commutes with ReLU (a monotone map that rounds nothing), so the two orders give
    the same values and, ties included, the same gradients (a pooled window whose maximum is
    ≤ 0 passes no gradient either way); pooling first runs the ReLU and its backward on a
    quarter of the activations, which on the CPU are memory-bound passes as long as a
    convolution (the small CNN's step: ``benchmarks/train_population.py``).
    """
    return (type(first) is nn.ReLU and type(second) is nn.MaxPool2d
            and not second.return_indices)


@_handles(nn.Sequential)
def _sequential(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    children = list(m.named_children())
    i = 0
    while i < len(children):
        (name, child), after = children[i], children[i + 1:i + 2]
        if after and _pools_before_relu(child, after[0][1]):
            h = s.run(child, f"{prefix}{name}.", s.run(after[0][1], f"{prefix}{after[0][0]}.", h))
            i += 2
        else:
            h = s.run(child, f"{prefix}{name}.", h)
            i += 1
    return h


@_handles(nn.Linear, nn.modules.linear.NonDynamicallyQuantizableLinear)
def _linear(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    if h.dim() != 3:
        raise ValueError(f"stacked Linear '{prefix[:-1]}' needs [K, B, F] input, got {tuple(h.shape)}")
    w, b = s.param(prefix, "weight"), s.param(prefix, "bias")
    # Computed as (W hᵀ)ᵀ: autograd's weight gradient is then bmm(gᵀ, h), which MKL runs 2–5×
    # faster than the bmm(hᵀ, g) of the h Wᵀ form on narrowing layers (784→2, 128→10) and as
    # fast (0.9–1.1×) on square ones (benchmarks/stacked_layouts.py).
    ht = h.transpose(1, 2)
    out = torch.bmm(w, ht) if b is None else torch.baddbmm(b.unsqueeze(2), w, ht)
    return out.transpose(1, 2)


DEPTHWISE_MAX_WIDTH = 8  # the widest first layer where the depthwise form was measured faster


def _depthwise_pays(s: StackedModel, m: nn.Conv2d, h: torch.Tensor) -> bool:
    """Whether the stacked ``m`` runs faster as a depthwise convolution of the replicated input.

    Same products, same weight layout; oneDNN's depthwise kernel runs a one-input-channel layer
    of 2–8 outputs 1.2–5.7× faster (forward + weight gradient, replica included) than the
    grouped kernel, whose groups then hold a single input channel (``benchmarks/
    stacked_layouts.py``). Not beyond: at 16–32 outputs the replica (one copy per output
    channel) eats the gain (0.86–1.24× on 2 threads, 0.63–0.85× on one loaded thread), and with
    a stride s it is s² times the output (a ViT's 4×4 patch convolution: 0.02×). Only on the CPU (a GPU's kernels were not
    measured) and in channels-last stacks: in a contiguous (BatchNorm) stack the ResNet stem's
    float32 weight gradient came out 1.3e-4 off a float64 reference, against < 1e-4 grouped.
    """
    return (m.in_channels == 1 and 1 < m.out_channels <= DEPTHWISE_MAX_WIDTH
            and all(st == 1 for st in m.stride) and s.channels_last and h.device.type == "cpu")


def _replicate_channels(h: torch.Tensor, r: int) -> torch.Tensor:
    """``[B, K, H, W]`` → channels-last ``[B, K·r, H, W]`` with channel ``k·r + j`` a copy of
    channel k (one copy, through the ``[B, H, W, K]`` view)."""
    nhwc = h.permute(0, 2, 3, 1)
    return nhwc.unsqueeze(-1).expand(*nhwc.shape, r).reshape(*nhwc.shape[:3], -1).permute(0, 3, 1, 2)


@_handles(nn.Conv2d)
def _conv2d(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    """A convolution of every member as one with ``groups=K·groups``.

    A narrow one-channel stride-1 convolution (a small grayscale CNN's first layer) runs as a
    depthwise convolution over the input replicated once per output channel
    (:func:`_depthwise_pays`).
    """
    h = _to_grouped_channels(s, h)
    w, b = s.param(prefix, "weight"), s.param(prefix, "bias")
    groups = s.k * m.groups
    if _depthwise_pays(s, m, h):
        h, groups = _replicate_channels(h, m.out_channels), s.k * m.out_channels
    return F.conv2d(h, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                    m.stride, m.padding, m.dilation, groups=groups)


@_handles(nn.BatchNorm2d)
def _batchnorm2d(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    h = _to_grouped_channels(s, h)
    mean, var = s.buffers[f"{prefix}running_mean"], s.buffers[f"{prefix}running_var"]
    if m.training:
        s.buffers[f"{prefix}num_batches_tracked"].add_(1)
    return F.batch_norm(h, mean.view(-1), var.view(-1), s.param(prefix, "weight").reshape(-1),
                        s.param(prefix, "bias").reshape(-1), m.training, m.momentum, m.eps)


@_handles(nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.Identity, nn.Dropout)
def _elementwise(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    return m(h)  # parameter-free and elementwise: the same on any layout


@_handles(nn.MaxPool2d, nn.AdaptiveAvgPool2d)
def _pool(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    return m(_to_grouped_channels(s, h))


@_handles(nn.Flatten)
def _flatten(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    if m.start_dim != 1 or m.end_dim != -1:
        raise ValueError(f"stacked Flatten '{prefix[:-1]}' supports only start_dim=1, end_dim=-1")
    if h.dim() == 4:  # [B, K·C, H, W] → [K, B, C·H·W], C-major like nn.Flatten
        b = h.shape[0]
        return h.reshape(b, s.k, -1, *h.shape[2:]).flatten(2).transpose(0, 1)
    return h.flatten(2)


@_handles(BasicBlock)
def _basic_block(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    h = _to_grouped_channels(s, h)
    out = torch.relu(s.run(m.bn1, f"{prefix}bn1.", s.run(m.conv1, f"{prefix}conv1.", h)))
    out = s.run(m.bn2, f"{prefix}bn2.", s.run(m.conv2, f"{prefix}conv2.", out))
    return torch.relu(out + s.run(m.shortcut, f"{prefix}shortcut.", h))


@_handles(Bottleneck)
def _bottleneck(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    h = _to_grouped_channels(s, h)
    out = h
    for i in (1, 2, 3):
        out = s.run(getattr(m, f"bn{i}"), f"{prefix}bn{i}.",
                    s.run(getattr(m, f"conv{i}"), f"{prefix}conv{i}.", out))
        if i < 3:
            out = torch.relu(out)
    return torch.relu(out + s.run(m.shortcut, f"{prefix}shortcut.", h))


# ---- the GPT decoder: token tensors are [K, B, T, d]; Linear layers see [K, B·T, d] ---------
@_handles(nn.Embedding)
def _embedding(s: StackedModel, m: nn.Module, prefix: str, ids: torch.Tensor) -> torch.Tensor:
    """Per-member lookup: ids ``[K, ...]`` → ``[K, ..., d]`` from member k's own table."""
    w = s.param(prefix, "weight")
    members = torch.arange(s.k, device=ids.device).view(-1, *([1] * (ids.dim() - 1)))
    return w[members, ids]


@_handles(nn.LayerNorm)
def _layer_norm(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dimension with member k's affine: ``h`` is ``[K, ..., d]``."""
    if len(m.normalized_shape) != 1:
        raise ValueError(f"stacked LayerNorm '{prefix[:-1]}' normalizes the last dimension only")
    out = F.layer_norm(h, m.normalized_shape, eps=m.eps)
    shape = (s.k, *([1] * (h.dim() - 2)), h.shape[-1])
    w, b = s.param(prefix, "weight"), s.param(prefix, "bias")
    out = out if w is None else out * w.view(shape)
    return out if b is None else out + b.view(shape)


def _tokens_linear(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    """A position-wise module on ``[K, B, T, d]`` through the ``[K, B·T, d]`` Linear form."""
    k, b, t, _ = h.shape
    return s.run(m, prefix, h.reshape(k, b * t, -1)).reshape(k, b, t, -1)


def _softmax_attention(qkv: torch.Tensor, heads: int, causal: bool) -> torch.Tensor:
    """Multi-head attention of packed ``qkv`` ``[K, B, T, 3·c]`` → ``[K, B, T, c]``, with
    (members × batch) as batch dimensions; written out, so it has a double backward."""
    k, b, t, c3 = qkv.shape
    c = c3 // 3
    hd = c // heads
    q, key, v = qkv.view(k, b, t, 3, heads, hd).permute(3, 0, 1, 4, 2, 5)  # [K, B, heads, T, hd]
    att = (q @ key.transpose(-2, -1)) / math.sqrt(hd)
    if causal:
        future = torch.ones(t, t, dtype=torch.bool, device=qkv.device).triu(1)
        att = att.masked_fill(future, float("-inf"))
    return (att.softmax(dim=-1) @ v).permute(0, 1, 3, 2, 4).reshape(k, b, t, c)


@_handles(CausalSelfAttention)
def _attention(s: StackedModel, m: nn.Module, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """:class:`~phasezoo.models.CausalSelfAttention` on ``[K, B, T, d]``."""
    out = _softmax_attention(_tokens_linear(s, m.qkv, f"{prefix}qkv.", x), m.heads, causal=True)
    return _tokens_linear(s, m.proj, f"{prefix}proj.", out)


@_handles(nn.MultiheadAttention)
def _mha(s: StackedModel, m: nn.Module, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Self-attention of ``nn.MultiheadAttention`` (see :func:`_plain_mha`) on ``[K, B, T, d]``."""
    k, b, t, c = x.shape
    qkv = torch.baddbmm(s.param(prefix, "in_proj_bias").unsqueeze(1), x.reshape(k, b * t, c),
                        s.param(prefix, "in_proj_weight").transpose(1, 2)).view(k, b, t, 3 * c)
    out = _softmax_attention(qkv, m.num_heads, causal=False)
    return _tokens_linear(s, m.out_proj, f"{prefix}out_proj.", out)


def _vit_classes() -> tuple[type, ...]:
    from torchvision.models.vision_transformer import (MLPBlock, VisionTransformer, Encoder,
                                                       EncoderBlock)
    return VisionTransformer, Encoder, EncoderBlock, MLPBlock


_VIT, _ENCODER, _ENCODER_BLOCK, _MLP_BLOCK = _vit_classes()
_handles(_MLP_BLOCK)(lambda s, m, prefix, h: _sequential(s, m, prefix, h))


def _pre_ln_block(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor,
                  names: tuple[str, str, str, str]) -> torch.Tensor:
    """A pre-LayerNorm transformer block on ``[K, B, T, d]``: h + attn(ln1(h)), then + mlp(ln2(·)).
    ``names``: the block's (ln1, attention, ln2, mlp) attributes (GPT's and torchvision's ViT's,
    whose dropouts are p = 0)."""
    ln1, attn, ln2, mlp = names
    x = h + s.run(getattr(m, attn), f"{prefix}{attn}.", s.run(getattr(m, ln1), f"{prefix}{ln1}.", h))
    return x + _tokens_linear(s, getattr(m, mlp), f"{prefix}{mlp}.",
                              s.run(getattr(m, ln2), f"{prefix}{ln2}.", x))


_handles(_ENCODER_BLOCK)(lambda s, m, prefix, h: _pre_ln_block(
    s, m, prefix, h, ("ln_1", "self_attention", "ln_2", "mlp")))
_handles(DecoderBlock)(lambda s, m, prefix, h: _pre_ln_block(s, m, prefix, h,
                                                             ("ln1", "attn", "ln2", "mlp")))


@_handles(_ENCODER)
def _encoder(s: StackedModel, m: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
    h = h + s.param(prefix, "pos_embedding")  # [K, 1, T, d]
    return s.run(m.ln, f"{prefix}ln.", s.run(m.layers, f"{prefix}layers.", h))


@_handles(_VIT)
def _vision_transformer(s: StackedModel, m: nn.Module, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Images ``[K, B, C, H, W]`` → logits ``[K, B, classes]``: grouped patch convolution, class
    token, encoder, the class token's output through the head."""
    patches = s.run(m.conv_proj, f"{prefix}conv_proj.", x)  # [B, K·d, nh, nw]
    b = patches.shape[0]
    h = patches.reshape(b, s.k, m.hidden_dim, -1).permute(1, 0, 3, 2)  # [K, B, nh·nw, d]
    cls = s.param(prefix, "class_token").expand(-1, b, -1, -1)  # [K, 1, 1, d] → [K, B, 1, d]
    h = s.run(m.encoder, f"{prefix}encoder.", torch.cat([cls, h], dim=2))
    return s.run(m.heads, f"{prefix}heads.", h[:, :, 0])


@_handles(GPT)
def _gpt(s: StackedModel, m: nn.Module, prefix: str, ids: torch.Tensor) -> torch.Tensor:
    """Token ids ``[K, B, T]`` → logits ``[K, B, T, vocab]``."""
    t = ids.shape[-1]
    pos = s.param(prefix, "pos.weight")[:, None, :t]  # [K, 1, T, d]
    h = s.run(m.tok, f"{prefix}tok.", ids) + pos
    h = s.run(m.ln_f, f"{prefix}ln_f.", s.run(m.blocks, f"{prefix}blocks.", h))
    return _tokens_linear(s, m.head, f"{prefix}head.", h)
