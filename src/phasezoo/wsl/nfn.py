"""The ``nfn`` learned baseline: a permutation-invariant neural functional over the weights of a
zoo of MLPs or plain CNNs.

Why this model: a weight-space method should not depend on the order of a layer's hidden units,
and the neural functionals of Zhou et al. (2023, "Permutation Equivariant Neural Functionals";
the ``nfn`` library, used as it is) are built from layers that commute with those permutations,
then pool them away. Their ``NPLinear`` layers treat hidden sizes as symmetric dimensions, so
one network reads every width of a zoo, and they take convolution filters as weights with
filter dimensions (``(out, in, h, w)``, the kernel positions as extra channels): the library's
own CNN-zoo experiments. Supported: a chain of ``Linear`` and ``Conv2d`` layers with biases,
each reading the previous one's units (pooling between them; the registry's ``mlp``,
``pinn-mlp`` and ``cnn``). BatchNorm, residual shortcuts and attention are outside what the
library's layers model; such zoos raise :class:`~phasezoo.wsl.methods.MethodUnsupported`, the
report says so, and ``neuron_sets`` (:mod:`phasezoo.wsl.neuron_sets`) covers them.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from phasezoo.runtime import seeded
from phasezoo.wsl.fitting import Targets, fit_best_epoch, predict_batches
from phasezoo.wsl.methods import MethodUnsupported, Rows

# per layer: weight slice, weight shape ((out, in) or (out, in, h, w)), bias slice
Layers = list[tuple[slice, tuple[int, ...], slice]]
WEIGHT_DIMS = (2, 4)  # Linear and Conv2d weights: what the library's layers read


@dataclass(frozen=True)
class NFNSettings:
    """Network and training settings (small: the benchmark fits one network per split)."""

    channels: int = 4
    layers: int = 1  # NPLinear layers; each C → C layer costs C× the first on a wide input
    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 32


@contextlib.contextmanager
def cpu_kernels(onednn: bool) -> Iterator[None]:
    """oneDNN's CPU kernels, or PyTorch's own (the switch's warning about Intel GPUs silenced)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=onednn):
            yield


def plain_kernels() -> contextlib.AbstractContextManager:
    """PyTorch's own CPU kernels instead of oneDNN's."""
    return cpu_kernels(onednn=False)


def kernels_for(parts) -> contextlib.AbstractContextManager:
    """The faster CPU kernels for a zoo's rows, measured on 2 cores: PyTorch's own for MLPs
    (oneDNN's took ~5× as long on their (batch, channels, width, inputs) shapes,
    benchmarks/wsl_nfn.py), oneDNN's for CNNs (PyTorch's slow convolution backward took ~4× as
    long on their 9× wider 1×1 convolutions: 2.6 s against 11 s for 3 epochs of 32 CNN rows)."""
    conv = any(w.dim() > 2 for ws, _ in parts for w in ws)
    return cpu_kernels(onednn=True) if conv else plain_kernels()


def chain_problem(layout: dict) -> str | None:
    """Why the layout is not a chain of Linear/Conv2d layers with biases each reading the
    previous layer's units (naming the first tensor that breaks it), or None if it is one."""
    entries, prev = layout["entries"], None
    if not entries:
        return "no tensors"
    for i in range(0, len(entries), 2):
        w, b = entries[i], entries[i + 1] if i + 1 < len(entries) else None
        for e in (w, b):
            if e is not None and e.get("kind", "parameter") != "parameter":
                return f"'{e['name']}' is a buffer (BatchNorm statistics?)"
        if len(w["shape"]) not in WEIGHT_DIMS or not w["name"].endswith("weight"):
            return f"'{w['name']}' {w['shape']} is not a Linear or Conv2d weight"
        if b is None or list(b["shape"]) != [w["shape"][0]] or not b["name"].endswith("bias"):
            return f"'{w['name']}' is not followed by its bias"
        if prev is not None and w["shape"][1] != prev:
            return (f"'{w['name']}' reads {w['shape'][1]} units, the layer before has {prev} "
                    "(a shortcut, an attention block or a flattened feature map)")
        prev = w["shape"][0]
    return None


def linear_chain(layout: dict) -> Layers | None:
    """Where each layer's weight and bias lie in a row, or None if the layout is not a chain of
    Linear/Conv2d layers with biases (:func:`chain_problem`)."""
    if chain_problem(layout) is not None:
        return None
    entries = layout["entries"]
    return [(slice(w["offset"], w["offset"] + int(np.prod(w["shape"]))), tuple(w["shape"]),
             slice(b["offset"], b["offset"] + w["shape"][0]))
            for w, b in zip(entries[::2], entries[1::2], strict=True)]


def _parts(rows: Rows) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Each row's (weights, biases) as tensors, read one row at a time."""
    for layout in rows.layouts:
        problem = chain_problem(layout)
        if problem is not None:
            raise MethodUnsupported("nfn: supports chains of Linear and Conv2d layers with "
                                    "biases (MLPs, plain CNNs); this zoo's layout is not one: "
                                    + problem)
    out = []
    for flat, layers in zip(rows.weights(), map(linear_chain, rows.layouts), strict=True):
        flat = torch.from_numpy(np.asarray(flat, dtype=np.float32))
        out.append(([flat[w].view(shape) for w, shape, _ in layers],
                    [flat[b] for _, _, b in layers]))
    return out


def _batch(parts, index, scales):
    """A WeightSpaceFeatures batch of rows sharing one architecture, each layer divided by its
    scale (one number per layer: a rescaling every permutation leaves alone)."""
    from nfn.common import WeightSpaceFeatures

    weights = [torch.stack([parts[i][0][k] for i in index])[:, None] / s
               for k, s in enumerate(scales[0])]
    biases = [torch.stack([parts[i][1][k] for i in index])[:, None] / s
              for k, s in enumerate(scales[1])]
    return WeightSpaceFeatures(weights, biases)


def _groups(parts) -> list[list[int]]:
    """Row indices by architecture (layer shapes): a batch holds one architecture."""
    groups: dict[tuple, list[int]] = {}
    for i, (ws, _) in enumerate(parts):
        groups.setdefault(tuple(tuple(w.shape) for w in ws), []).append(i)
    return list(groups.values())


class NFNMethod:
    """The ``nfn`` baseline as a :class:`~phasezoo.wsl.methods.Method`: ``NPLinear`` layers
    (equivariant), ``HNPPool`` (invariant) and a small head, trained by the learned baselines'
    shared loop (:func:`~phasezoo.wsl.fitting.fit_best_epoch`: Adam, the epoch with the best
    validation score kept)."""

    name = "nfn"
    # What the benchmark fits it on (phasezoo.wsl.methods.Method): the two headline tasks on
    # the random split (each fit takes ~10 s on the default zoo on 2 CPU cores).
    tasks, splits = ("test_accuracy", "phase"), ("random",)

    def __init__(self, settings: NFNSettings = NFNSettings()) -> None:
        self.settings = settings

    def _network(self, spec, outputs: int) -> nn.Module:
        from nfn.layers import HNPPool, NPLinear, TupleOp

        c, layers = self.settings.channels, []
        for i in range(self.settings.layers):
            layers += [NPLinear(spec, 1 if i == 0 else c, c, io_embed=True), TupleOp(nn.ReLU())]
        return nn.Sequential(
            *layers, HNPPool(spec), nn.Flatten(start_dim=-2),
            nn.Linear(c * HNPPool.get_num_outs(spec), 64), nn.ReLU(), nn.Linear(64, outputs))

    def fit(self, train: Rows, y: np.ndarray, val: Rows, y_val: np.ndarray, kind: str,
            seed: int) -> None:
        from nfn.common import network_spec_from_wsfeat

        parts, val_parts = _parts(train), _parts(val)
        self.scales = [[float(torch.stack([p[j][k].pow(2).mean() for p in parts]).mean().sqrt())
                        + 1e-12 for k in range(len(parts[0][j]))] for j in (0, 1)]
        self.targets = Targets(y, kind)
        spec = network_spec_from_wsfeat(_batch(parts, [0], self.scales))
        with seeded(seed):
            self.net = self._network(spec, self.targets.outputs)
        s = self.settings
        with kernels_for(parts):
            fit_best_epoch(self.net, lambda idx: _batch(parts, idx, self.scales), _groups(parts),
                           self.targets, lambda: self._predict_parts(val_parts), y_val,
                           epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=seed)

    def _predict_parts(self, parts) -> np.ndarray:
        return predict_batches(self.net, lambda idx: _batch(parts, idx, self.scales),
                               _groups(parts), len(parts), self.targets)

    def predict(self, rows: Rows) -> np.ndarray:
        parts = _parts(rows)
        with kernels_for(parts):
            return self._predict_parts(parts)
