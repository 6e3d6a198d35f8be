"""Representation similarity between models of one cell: linear CKA as the metric protocol
measures it (:mod:`phasezoo.protocols`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from phasezoo.data import Split
from phasezoo.evaluation import logits_of
from phasezoo.runtime import generator
from phasezoo.settings import MetricsSettings


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) between two (samples × features) representations.

    Computed in float64 from the feature-space form ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) after centring
    each feature, which equals the Gram-matrix HSIC form and costs O(n·d²) instead of O(n²).
    """
    x = x.double() - x.double().mean(dim=0, keepdim=True)
    y = y.double() - y.double().mean(dim=0, keepdim=True)
    num = torch.linalg.matrix_norm(y.T @ x) ** 2
    den = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(num / den) if den > 0 else float("nan")


def cka_indices(n: int, k: int) -> torch.Tensor:
    """``min(k, n)`` evenly spaced test indices: the whole test split is covered (a PINN's grid
    is x-major, so its first points would see only a slice of the domain)."""
    return torch.linspace(0, n - 1, min(k, n)).round().long().unique()


def cka_batches(split: Split, cfg: MetricsSettings, seed: int) -> list[torch.Tensor]:
    """The protocol's CKA inputs, batch by batch (the same for every pair of a cell).

    ``test``: ``cka_batches × cka_batch_size`` evenly spaced test samples, in order, cut into
    batches (``seed`` unused). ``train-mixup`` (LLT's ``--mixup-CKA``): that many training
    samples from one shuffle drawn from ``seed`` (the cell's stream,
    :func:`phasezoo.landscape.pairs.cell_seed`); each batch is mixed with a permutation of itself, x·λ + x[π]·(1 − λ), one
    λ ~ Beta(α, α) per batch. A split with fewer samples gives fewer batches of nearly equal
    size (:func:`_batches`), never a last batch of one or two samples, whose CKA is NaN or 1.
    """
    size, count = cfg.cka_batch_size, cfg.cka_batches
    if cfg.cka_data == "test":
        x = split.x_test[cka_indices(len(split.x_test), size * count).to(split.x_test.device)]
        return [x[idx] for idx in _batches(len(x), size)]
    gen, rng = generator(seed), np.random.default_rng(seed)
    order = torch.randperm(len(split.x_train), generator=gen)[:size * count]
    batches = []
    for part in _batches(len(order), size):
        idx = order[part]
        x = split.x_train[idx.to(split.x_train.device)]
        lam = float(rng.beta(cfg.cka_mixup_alpha, cfg.cka_mixup_alpha))
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        batches.append(lam * x + (1 - lam) * x[perm])
    return batches


def _batches(n: int, size: int) -> list[torch.Tensor]:
    """Index batches of ``0..n-1``: ``ceil(n / size)`` of nearly equal size (exactly ``size``
    each when ``size`` divides ``n``, as with the protocols' full samples)."""
    return list(torch.arange(n).tensor_split(max(1, math.ceil(n / size))))


def pair_cka(a: nn.Module, b: nn.Module, split: Split, batches: list[torch.Tensor],
             cfg: MetricsSettings, batch_size: int) -> float:
    """Linear CKA of two models' outputs (logits or softmax) on ``batches``: the mean of one
    CKA per batch (``batch-mean``, PTMZ) or one CKA over all samples (``pooled``, LLT)."""
    def outputs(model: nn.Module) -> list[torch.Tensor]:
        out = [logits_of(model, x, batch_size, split.task) for x in batches]
        return [o.softmax(dim=1) for o in out] if cfg.cka_output == "softmax" else out

    oa, ob = outputs(a), outputs(b)
    if cfg.cka_pooling == "pooled":
        return linear_cka(torch.cat(oa), torch.cat(ob))
    return float(np.mean([linear_cka(x, y) for x, y in zip(oa, ob, strict=True)]))
