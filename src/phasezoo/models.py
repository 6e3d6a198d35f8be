"""Architecture registry: a name and a width become an ``nn.Module`` (timm-style).

Every builder takes ``width``, ``input_shape`` and ``num_classes`` (plus its own keyword
arguments), so the load axis of a zoo can be the width of any registered architecture. Adding an
architecture is one function decorated with :func:`register_model`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from phasezoo.registries import DEPTH_MODELS, options_of, unknown_options
from phasezoo.settings import ModelSettings

ModelFn = Callable[..., nn.Module]
_MODELS: dict[str, ModelFn] = {}


def register_model(fn: ModelFn) -> ModelFn:
    """Register ``fn`` under its name with '_' replaced by '-'."""
    _MODELS[fn.__name__.replace("_", "-")] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered architectures."""
    return sorted(_MODELS)


def create_model(name: str, *, width: int, input_shape: tuple[int, ...], num_classes: int,
                 **kwargs: object) -> nn.Module:
    """Build a registered architecture.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names), ``width`` < 1, or
            a keyword argument is not one of the architecture's (the message lists them).
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model '{name}'; registered models: {list_models()}")
    if int(width) < 1:
        raise ValueError(f"model '{name}': width must be ≥ 1, got {width}")
    fn = _MODELS[name]
    problem = unknown_options("model", name, kwargs, options_of("model", fn))
    if problem:
        raise ValueError(f"model.options: {problem}")
    return fn(width=int(width), input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)


def model_kwargs(model: ModelSettings) -> dict:
    """The architecture's own keyword arguments from a cell's ``model`` section: ``depth`` for
    the MLPs (config ``model.depth``, :data:`~phasezoo.registries.DEPTH_MODELS`) and the
    config's ``model.options``."""
    depth = {"depth": int(model.depth)} if model.name in DEPTH_MODELS else {}
    return depth | dict(model.options)


def architecture_spec(model: ModelSettings, input_shape: tuple[int, ...],
                      num_classes: int) -> dict:
    """The registry name and ``create_model`` arguments of a cell's architecture (what a zoo
    row's layout records), from its recipe's ``model`` section (the width axis applied) and its
    data's input shape and outputs."""
    kwargs = {"width": int(model.width), "input_shape": list(input_shape),
              "num_classes": int(num_classes), **model_kwargs(model)}
    return {"name": model.name, "kwargs": kwargs}


@register_model
def mlp(*, width: int, input_shape: tuple[int, ...], num_classes: int, depth: int = 2) -> nn.Module:
    """Fully connected ReLU network with ``depth`` hidden layers of ``width`` units."""
    dims = [math.prod(input_shape)] + [width] * depth
    layers: list[nn.Module] = [nn.Flatten()]
    for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], num_classes))
    return nn.Sequential(*layers)


@register_model
def cnn(*, width: int, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Small CNN: two 3×3 conv blocks (width, 2·width channels) with max-pool, global pool, linear."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """A residual block's skip path: identity, or a strided 1×1 projection with BatchNorm when
    the shape changes (state_dict keys ``shortcut.0.*``, ``shortcut.1.*``)."""
    if stride == 1 and c_in == c_out:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs with BatchNorm) with a 1×1 projection when needed."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@register_model
def resnet18(*, width: int, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """CIFAR-style ResNet-18: 3×3 stem, no max-pool, stages of width k, 2k, 4k, 8k (k = width).

    This is the width-scaled ResNet-18 of Yang et al. 2021 and the phase-transition model zoo.
    """
    widths = [width, 2 * width, 4 * width, 8 * width]
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU()]
    c_in = width
    for i, c_out in enumerate(widths):
        for j in range(2):
            layers.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and j == 0) else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1×1, 3×3 with the stride, 1×1 ×4 channels; torchvision's v1.5)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


@register_model
def resnet50(*, width: int, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """CIFAR-style ResNet-50: 3×3 stem, no max-pool, bottleneck stages [3, 4, 6, 3] of widths
    k, 2k, 4k, 8k (outputs ×4; k = width). At k = 64 it is torchvision's ResNet-50 with the
    CIFAR stem (``tests/test_models.py`` counts the parameters against torchvision's)."""
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU()]
    c_in = width
    for i, (planes, blocks) in enumerate(zip([width, 2 * width, 4 * width, 8 * width],
                                             [3, 4, 6, 3], strict=True)):
        for j in range(blocks):
            layers.append(Bottleneck(c_in, planes, stride=2 if (i > 0 and j == 0) else 1))
            c_in = planes * Bottleneck.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


def _heads(width: int) -> int:
    """Attention heads of a transformer of embedding size ``width``: head size ~64 (ViT's and
    GPT-2's convention), at least one head, and a divisor of ``width``."""
    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    return heads


@register_model
def vit(*, width: int, input_shape: tuple[int, ...], num_classes: int, depth: int = 6,
        patch_size: int = 4) -> nn.Module:
    """Small ViT for 28–32 px images: torchvision's ``VisionTransformer`` (the field's reference
    implementation) with embedding size ``width``, ``depth`` encoder blocks, MLP size 4·width,
    ~64-dim heads, ``patch_size`` patches, and a patch embedding for ``input_shape[0]`` channels.

    Raises:
        ValueError: if the image side is not a multiple of ``patch_size``.
    """
    from torchvision.models import VisionTransformer

    channels, size = input_shape[0], input_shape[-1]
    if size % patch_size or input_shape[-2] != size:
        raise ValueError(f"vit: square images with a side divisible by patch_size={patch_size} "
                         f"needed, got {tuple(input_shape)}")
    model = VisionTransformer(image_size=size, patch_size=patch_size, num_layers=depth,
                              num_heads=_heads(width), hidden_dim=width, mlp_dim=4 * width,
                              num_classes=num_classes)
    model.conv_proj = nn.Conv2d(channels, width, patch_size, patch_size)
    return model


@register_model
def pinn_mlp(*, width: int, input_shape: tuple[int, ...], num_classes: int,
             depth: int = 4) -> nn.Module:
    """PINN MLP: ``depth`` tanh hidden layers of ``width`` units from the ``input_shape[0]``
    coordinates to ``num_classes`` outputs (4 × 50 in Krishnapriyan et al. 2021). tanh, not ReLU:
    the PDE residual differentiates the network w.r.t. its inputs."""
    dims = [input_shape[0]] + [width] * depth
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(d_in, d_out), nn.Tanh()]
    layers.append(nn.Linear(dims[-1], num_classes))
    return nn.Sequential(*layers)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with the softmax written out.

    Why not ``F.scaled_dot_product_attention``: its fused kernels have no double backward, and
    the Hessian metrics differentiate the loss twice.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class DecoderBlock(nn.Module):
    """GPT-2 block: pre-LayerNorm attention and 4× GELU MLP, each with a residual connection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """GPT-2-style decoder-only LM: token + learned position embeddings, pre-LN blocks, final
    LayerNorm, linear head over the vocabulary; GPT-2's init (N(0, 0.02), residual projections
    scaled by 1/√(2·depth)), no dropout. The head is not tied to the token embedding, so every
    weight is one entry of the flat weight vector (and one matrix for HT-SR)."""

    def __init__(self, width: int, depth: int, heads: int, context: int, vocab: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.Sequential(*[DecoderBlock(width, heads) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * depth) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, T, vocab)`` for token ids ``(batch, T)``, T ≤ context."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.head(self.ln_f(self.blocks(self.tok(idx) + self.pos(pos))))


@register_model
def gpt(*, width: int, input_shape: tuple[int, ...], num_classes: int, depth: int = 4) -> nn.Module:
    """GPT-2-style decoder with model dimension ``width`` (the load axis), ``depth`` blocks,
    ~64-dim heads, context ``input_shape[0]`` and vocabulary ``num_classes``."""
    return GPT(width, depth, _heads(width), context=input_shape[0], vocab=num_classes)
