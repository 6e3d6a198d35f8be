"""TempBalance (Zhou et al., NeurIPS 2023): layer-wise learning rates from each layer's HT-SR α.

As its code does it for CIFAR (``docs/alphapruning-tempbalance-protocol.md`` §2;
YefanZhou/TempBalance ``tempbalance.py``):

* the tuned layers (:func:`tuned_layers`): every Conv2d and Linear in module order but the first
  and the last, and none with fewer than 50 eigenvalues (kh·kw·min(out, in) for a conv);
* α per tuned layer as AlphaPruning measures it (the same estimator: the ESD of the weight, a
  conv's kernel-position slices pooled and scaled by √0.5, x_min at the median eigenvalue, Hill;
  :func:`phasezoo.wsl.alphaprune.layer_alpha`);
* the rate of layer l: η·(lo + (hi − lo)·(α_l − α_min)/(α_max − α_min)), lo = 0.5, hi = 1.5 —
  a larger α (a less trained layer) gets a larger rate; a BatchNorm named ``…bnK`` follows the
  layer named ``…convK``; every other parameter keeps η;
* α and the rates are measured again before every epoch.

Where phasezoo departs: with fewer than two distinct α (one tuned layer, e.g. the hidden layer
of a 2-layer MLP) every scale is 1 — the reference's ``np.interp`` over equal end points gives
such a layer the top rate, which is an artefact of the degenerate map, not a choice.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from phasezoo.wsl.alphaprune import layer_alpha

LOW, HIGH = 0.5, 1.5  # its CIFAR scripts' lr_min_ratio, lr_max_ratio
MIN_EIGS = 50  # its eigs_thresh: a layer with fewer eigenvalues is not tuned


def eig_count(module: nn.Module) -> int:
    """How many eigenvalues the layer's ESD has (kh·kw·min(out, in) for a conv)."""
    w = module.weight
    return int(np.prod(w.shape[2:], dtype=int) * min(w.shape[0], w.shape[1]))


def tuned_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the layers TempBalance tunes (see the module docstring)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return [(n, m) for n, m in layers[1:-1] if eig_count(m) >= MIN_EIGS]


def layer_scales(alphas: np.ndarray, low: float = LOW, high: float = HIGH) -> np.ndarray:
    """Each tuned layer's rate multiplier from its α (1 everywhere when the α do not differ)."""
    alphas = np.asarray(alphas, float)
    finite = alphas[np.isfinite(alphas)]
    if len(finite) < 2 or finite.max() == finite.min():
        return np.ones(len(alphas))
    t = (np.where(np.isfinite(alphas), alphas, finite.mean()) - finite.min()) / (
        finite.max() - finite.min())
    return low + (high - low) * t


def parameter_scales(model: nn.Module, params: list[nn.Parameter]) -> list[float]:
    """The rate multiplier of each of ``params`` (in that order) under the model's current α:
    a tuned layer's weight and bias share its scale, its ``bnK`` follows its ``convK``."""
    layers = tuned_layers(model)
    scales = layer_scales(np.array([layer_alpha(m.weight) for _, m in layers]))
    by_module = {name: float(s) for (name, _), s in zip(layers, scales)}
    for name, s in list(by_module.items()):
        head, _, last = name.rpartition(".")
        if last.startswith("conv"):
            by_module[f"{head}.bn{last[4:]}" if head else f"bn{last[4:]}"] = s
    by_param = {id(p): by_module[mod] for mod, m in model.named_modules() if mod in by_module
                for p in m.parameters(recurse=False)}
    return [by_param.get(id(p), 1.0) for p in params]
