"""A model's parameter count from its config alone, without torch: what the config check needs
to refuse a cell past ``max_params`` before any job allocates it.

Why formulas and not the models themselves: validating a config must not import torch
(``phasezoo validate``, every Snakemake parse), and a width of 10^7 passed validation and then
failed inside torch after 102 s. Each registered architecture has its count here, written from
its builder in :mod:`phasezoo.models`; ``tests/test_hostile_config.py`` checks every one against
the model built on the ``meta`` device (:func:`phasezoo.estimate.architecture_cost`) over widths,
depths, options and datasets, and fails for an architecture without one. The data's input shape
and outputs come from :func:`data_io` (also what :mod:`phasezoo.estimate` costs).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from phasezoo.dataset_facts import dataset_facts
from phasezoo.registries import option_defaults
from phasezoo.task_kinds import task_kind


def data_io(dataset: str, image_size: int | None, channels: int | None,
            options: Mapping[str, Any]) -> tuple[tuple[int, ...], int]:
    """(input shape of one sample, outputs) of a zoo's data, from its config and the dataset's
    record (:mod:`phasezoo.dataset_facts`): by its task kind's inputs, token sequences of
    ``seq_len``, points of the record's shape, or images (resized and converted as configured).

    Raises:
        ValueError: for a dataset without a record.
    """
    facts = dataset_facts(dataset)
    inputs = task_kind(facts.task).inputs
    if inputs == "tokens":
        opts = option_defaults("dataset", dataset) | dict(options)
        return (int(opts["seq_len"]),), facts.classes
    if inputs == "points":
        return tuple(facts.shape), facts.classes
    c, h, w = facts.shape
    return (channels or c, image_size or h, image_size or w), facts.classes


def parameter_count(model: str, width: int, input_shape: tuple[int, ...], num_classes: int,
                    options: Mapping[str, Any]) -> int | None:
    """Parameters of registered architecture ``model`` (as ``create_model`` builds it with
    these arguments and ``options``, over its defaults); None for one without a formula."""
    formula = _FORMULAS.get(model)
    if formula is None:
        return None
    return formula(width, tuple(input_shape), num_classes,
                   **(option_defaults("model", model) | dict(options)))


def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def _mlp_layers(n_in: int, w: int, depth: int, num_classes: int) -> int:
    """``depth`` hidden Linear layers of ``w`` units from ``n_in`` inputs and a head (mlp,
    pinn-mlp), in closed form: a depth of 10^9 costs no more to count than one of 2."""
    if depth <= 0:
        return _linear(n_in, num_classes)
    return _linear(n_in, w) + (depth - 1) * _linear(w, w) + _linear(w, num_classes)


def _mlp(w: int, shape: tuple[int, ...], k: int, depth: int) -> int:
    return _mlp_layers(math.prod(shape), w, depth, k)


def _pinn_mlp(w: int, shape: tuple[int, ...], k: int, depth: int) -> int:
    return _mlp_layers(shape[0], w, depth, k)


def _cnn(w: int, shape: tuple[int, ...], k: int) -> int:
    return _conv(shape[0], w, 3) + _conv(w, 2 * w, 3) + _linear(2 * w, k)


def _shortcut(c_in: int, c_out: int, stride: int) -> int:
    return 0 if stride == 1 and c_in == c_out else _conv(c_in, c_out, 1, False) + 2 * c_out


def _resnet(w: int, shape: tuple[int, ...], k: int, blocks: list[int], bottleneck: bool) -> int:
    """The CIFAR-style ResNets: stem, stages of widths w..8w (×4 out for bottlenecks), head."""
    total, c_in = _conv(shape[0], w, 3, False) + 2 * w, w
    for i, (planes, n) in enumerate(zip([w, 2 * w, 4 * w, 8 * w], blocks)):
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            if bottleneck:
                c_out = 4 * planes
                total += (_conv(c_in, planes, 1, False) + _conv(planes, planes, 3, False)
                          + _conv(planes, c_out, 1, False) + 2 * (2 * planes + c_out))
            else:
                c_out = planes
                total += _conv(c_in, c_out, 3, False) + _conv(c_out, c_out, 3, False) + 4 * c_out
            total += _shortcut(c_in, c_out, stride)
            c_in = c_out
    return total + _linear(c_in, k)


def _vit(w: int, shape: tuple[int, ...], k: int, depth: int, patch_size: int) -> int:
    """torchvision's VisionTransformer: patch embedding, class token, positions, pre-LN blocks
    (attention in/out projections, 4·w MLP), final LayerNorm, head."""
    tokens = (shape[-1] // patch_size) ** 2 + 1
    block = 4 * w + _linear(w, 3 * w) + _linear(w, w) + _linear(w, 4 * w) + _linear(4 * w, w)
    return (_conv(shape[0], w, patch_size) + w + tokens * w + depth * block + 2 * w
            + _linear(w, k))


def _gpt(w: int, shape: tuple[int, ...], k: int, depth: int) -> int:
    """GPT-2-style decoder: token and position embeddings, blocks, final LayerNorm, head."""
    block = 4 * w + _linear(w, 3 * w) + _linear(w, w) + _linear(w, 4 * w) + _linear(4 * w, w)
    return k * w + shape[0] * w + depth * block + 2 * w + _linear(w, k, bias=False)


_FORMULAS: dict[str, Callable[..., int]] = {
    "mlp": _mlp, "pinn-mlp": _pinn_mlp, "cnn": _cnn, "vit": _vit, "gpt": _gpt,
    "resnet18": lambda w, s, k: _resnet(w, s, k, [2, 2, 2, 2], bottleneck=False),
    "resnet50": lambda w, s, k: _resnet(w, s, k, [3, 4, 6, 3], bottleneck=True),
}
