"""AlphaPruning (Lu et al. 2024): layer-wise sparsities from each layer's HT-SR α.

As its code does it (``docs/alphapruning-tempbalance-protocol.md``; haiquanlu/AlphaPruning):

* α per layer (:func:`layer_alpha`): the ESD is the squared singular values of the weight
  (a Linear as stored; a Conv2d as one out × in matrix per kernel position, scaled by √0.5 and
  pooled), no eigenvalue filtered; x_min is the median eigenvalue λ_{⌊N/2⌋} (its image
  classifiers' ``alpha_mid``) and α = 1 + n / Σ_{j ≥ i} ln(λ_j / x_min) (Hill).
* sparsities (:func:`alpha_sparsities`): r_l = (1 − ε) + 2ε·(α_l − α_min)/(α_max − α_min), then
  scaled so the parameter-weighted mean is the target S: heavier-tailed (smaller α) layers are
  pruned less. ε = 0.2 as in its image examples.

Where phasezoo departs, and why: a layer whose share would pass 1 (the reference then fails
with an index error) is capped at 1 and the excess spread over the others in proportion to their
r, so the global sparsity stays S; equal α everywhere (0/0 in the reference) gives every layer
S. The output layer is never pruned (:func:`prunable`). Inside a layer the ``round(s·numel)``
smallest magnitudes are zeroed, as phasezoo's global
magnitude pruning zeroes its k (the reference zeroes every weight ≤ the value at index
⌊s·numel⌋, one more), so the three pruning arms differ only in how they allocate sparsity.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

EPSILON = 0.2  # AlphaPruning's image-classifier default (its LLM default is 0.3)
CONV_NORM = 0.5  # each kernel-position slice is scaled by √0.5 (eigenvalues × 0.5)


def layer_esd(weight: torch.Tensor) -> np.ndarray:
    """Ascending eigenvalues of WᵀW (float64): a Linear's matrix, or a conv's kernel-position
    slices scaled by √``CONV_NORM``, pooled."""
    w = weight.detach().to("cpu", torch.float64)
    if w.ndim == 4:  # (out, in, kh, kw) → (kh·kw, out, in)
        w = (w.flatten(2) * math.sqrt(CONV_NORM)).permute(2, 0, 1)
    elif w.ndim != 2:
        raise ValueError(f"layer_esd: a weight of shape {tuple(w.shape)} is not a Linear or "
                         "Conv2d weight")
    return np.sort(torch.linalg.svdvals(w).reshape(-1).numpy() ** 2)


def hill_alpha(esd: np.ndarray) -> float:
    """α of an ascending ESD with x_min at λ_{⌊N/2⌋}: 1 + n / Σ ln(λ_j / x_min) over the n
    eigenvalues from x_min up (NaN when they are all equal or x_min is not positive)."""
    i = len(esd) // 2
    tail = esd[i:]
    if not len(tail) or tail[0] <= 0:
        return float("nan")
    s = float(np.sum(np.log(tail / tail[0])))
    return 1.0 + len(tail) / s if s > 0 else float("nan")


def layer_alpha(weight: torch.Tensor) -> float:
    """AlphaPruning's α of one layer's weight (``alpha_mid``)."""
    return hill_alpha(layer_esd(weight))


def alpha_sparsities(alphas: np.ndarray, sizes: np.ndarray, sparsity: float,
                     epsilon: float = EPSILON) -> np.ndarray:
    """Each layer's sparsity: the α map above, scaled so that Σ sizes·s = sparsity·Σ sizes,
    every s in [0, 1].

    A layer without a finite α (an ESD of one eigenvalue, e.g. a PINN's scalar output layer:
    the reference's α is then infinite and every r NaN) takes the mean α of the others, so it
    is allocated as an average layer; with no finite α at all every layer gets ``sparsity``.

    Raises:
        ValueError: for a sparsity outside [0, 1] or an ε outside [0, 1).
    """
    alphas, sizes = np.asarray(alphas, float), np.asarray(sizes, float)
    if not 0 <= sparsity <= 1 or not 0 <= epsilon < 1:
        raise ValueError(f"alpha_sparsities: sparsity {sparsity} or ε {epsilon} out of range")
    finite = np.isfinite(alphas)
    alphas = np.where(finite, alphas, alphas[finite].mean() if finite.any() else 0.0)
    spread = alphas.max() - alphas.min()
    r = ((1 - epsilon) + 2 * epsilon * (alphas - alphas.min()) / spread if spread > 0
         else np.ones_like(alphas))
    out, free = np.zeros_like(r), np.ones(len(r), dtype=bool)
    budget = sparsity * sizes.sum()
    while free.any():  # cap at 1 and spread the excess over the rest (never in the reference's runs)
        s = r * budget / float(np.sum(sizes[free] * r[free]))
        over = free & (s > 1)
        if not over.any():
            out[free] = s[free]
            break
        out[over], free = 1.0, free & ~over
        budget -= sizes[over].sum()
    return out


def prunable(model: nn.Module) -> list[nn.Module]:
    """The layers every pruning arm prunes: the Linear and Conv2d weights (biases kept) but the
    last, the output layer. AlphaPruning never prunes a classifier head (nor an LM head), and
    with at most one eigenvalue per class its α is noise: kept in, the head of a default-zoo
    MLP (10 eigenvalues, α 4.6) drew a 100 % share at sparsity 0.8 and took the network with it."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]


@torch.no_grad()
def prune_layers(model: nn.Module, sparsities: np.ndarray) -> nn.Module:
    """``model`` with the ``round(s·numel)`` smallest magnitudes of each prunable layer zeroed
    in place (ties broken by position, as a stable sort orders them; :func:`zero_smallest`)."""
    layers = prunable(model)
    if len(layers) != len(sparsities):
        raise ValueError(f"prune_layers: {len(sparsities)} sparsities for {len(layers)} layers")
    for m, s in zip(layers, sparsities):
        k = int(round(float(s) * m.weight.numel()))
        if k:
            mags = m.weight.detach().abs().reshape(-1).to("cpu", torch.float32).numpy().copy()
            mags.partition(k - 1)
            zero_smallest([m.weight], float(mags[k - 1]), k)
    return model


@torch.no_grad()
def zero_smallest(weights: list[torch.Tensor], threshold: float, k: int) -> None:
    """Zero the ``k`` smallest magnitudes: all below ``threshold`` (the k-th smallest), then
    the first of those equal to it, in flat order across the tensors (a stable sort's order).
    Weights are compared in float32, as the magnitudes were."""
    ties = k - sum(int((w.abs().float() < threshold).sum()) for w in weights)
    for w in weights:
        flat = w.view(-1)
        mag = flat.abs().float()
        at = mag == threshold
        flat[mag < threshold] = 0.0
        first = at.nonzero().reshape(-1)[:ties]
        flat[first] = 0.0
        ties -= len(first)


def layer_alphas(model: nn.Module) -> np.ndarray:
    """α of every prunable layer, in :func:`prunable` order."""
    return np.array([layer_alpha(m.weight) for m in prunable(model)])


def layer_sizes(model: nn.Module) -> np.ndarray:
    """Weight count of every prunable layer."""
    return np.array([m.weight.numel() for m in prunable(model)], dtype=float)
