"""The ``nfn`` learned baseline: a permutation-invariant neural functional over an MLP zoo's weights.

Why this model: a weight-space method should not depend on the order of a layer's hidden units,
and the neural functionals of Zhou et al. (2023, "Permutation Equivariant Neural Functionals";
the ``nfn`` library, used as it is) are built from layers that commute with those permutations,
then pool them away. Their ``NPLinear`` layers treat hidden sizes as symmetric dimensions, so
one network reads every width of a zoo. Supported: zoos of MLPs (a chain of ``Linear`` layers
with biases, the same input and output sizes); other layouts raise
:class:`~phasezoo.wsl.methods.MethodUnsupported` and the report says so.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from phasezoo.runtime import generator, seeded
from phasezoo.wsl.methods import MethodUnsupported, Rows

Layers = list[tuple[slice, tuple[int, int], slice]]  # per layer: weight slice, shape, bias slice


@dataclass(frozen=True)
class NFNSettings:
    """Network and training settings (small: the benchmark fits one network per split)."""

    channels: int = 4
    layers: int = 1  # NPLinear layers; each C → C layer costs C× the first on a wide input
    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 32


@contextlib.contextmanager
def plain_kernels() -> Iterator[None]:
    """PyTorch's own CPU kernels instead of oneDNN's (whose switch warns about Intel GPUs)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def linear_chain(layout: dict) -> Layers | None:
    """Where each Linear layer's weight and bias lie in a row, or None if the layout is not a
    chain of Linear layers with biases (convolutions, BatchNorm, attention)."""
    entries, layers, prev = layout["entries"], [], None
    if not entries or len(entries) % 2 or any(e.get("kind", "parameter") != "parameter"
                                               for e in entries):
        return None
    for w, b in zip(entries[::2], entries[1::2], strict=True):
        if (len(w["shape"]) != 2 or list(b["shape"]) != [w["shape"][0]]
                or not w["name"].endswith("weight") or not b["name"].endswith("bias")
                or (prev is not None and w["shape"][1] != prev)):
            return None
        out, inp = w["shape"]
        layers.append((slice(w["offset"], w["offset"] + out * inp), (out, inp),
                       slice(b["offset"], b["offset"] + out)))
        prev = out
    return layers


def _parts(rows: Rows) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Each row's (weights, biases) as tensors, read one row at a time."""
    chains = [linear_chain(layout) for layout in rows.layouts]
    if any(c is None for c in chains):
        raise MethodUnsupported("nfn: supports zoos of MLPs (a chain of Linear layers with "
                                "biases); this zoo's layout has other tensors")
    out = []
    for flat, layers in zip(rows.weights(), chains, strict=True):
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


def _groups(parts) -> dict[tuple, list[int]]:
    """Row indices by architecture (layer shapes): a batch holds one architecture."""
    groups: dict[tuple, list[int]] = {}
    for i, (ws, _) in enumerate(parts):
        groups.setdefault(tuple(tuple(w.shape) for w in ws), []).append(i)
    return groups


class NFNMethod:
    """The ``nfn`` baseline as a :class:`~phasezoo.wsl.methods.Method`: ``NPLinear`` layers
    (equivariant), ``HNPPool`` (invariant) and a small head; Adam; the epoch with the best
    validation score is kept."""

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
        self.kind = kind
        self.scales = [[float(torch.stack([p[j][k].pow(2).mean() for p in parts]).mean().sqrt())
                        + 1e-12 for k in range(len(parts[0][j]))] for j in (0, 1)]
        if kind == "classification":
            self.classes = np.unique(y)
            target = torch.as_tensor(np.searchsorted(self.classes, y))
        else:
            self.mean, self.std = float(np.mean(y)), float(np.std(y)) or 1.0
            target = torch.as_tensor((y - self.mean) / self.std, dtype=torch.float32)
        spec = network_spec_from_wsfeat(_batch(parts, [0], self.scales))
        with seeded(seed):
            self.net = self._network(spec, len(self.classes) if kind == "classification" else 1)
        # oneDNN's kernels on these (batch, channels, width, inputs) shapes took ~5× as long as
        # PyTorch's own on 2 CPU cores (benchmarks/wsl_nfn.py)
        with plain_kernels():
            self._train(parts, target, val_parts, y_val, seed)

    def _train(self, parts, target, val_parts, y_val, seed: int) -> None:
        s = self.settings
        opt = torch.optim.Adam(self.net.parameters(), lr=s.lr)
        loss_fn = nn.CrossEntropyLoss() if self.kind == "classification" else nn.MSELoss()
        gen, groups = generator(seed), list(_groups(parts).values())
        best, best_state = -np.inf, None
        for _ in range(s.epochs):
            batches = [g[j:j + s.batch_size] for g in groups
                       for j in range(0, len(g), s.batch_size)]
            self.net.train()
            for b in torch.randperm(len(batches), generator=gen).tolist():
                idx = [batches[b][i] for i in torch.randperm(len(batches[b]),
                                                              generator=gen).tolist()]
                out = self.net(_batch(parts, idx, self.scales))
                loss = loss_fn(out if self.kind == "classification" else out[:, 0], target[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            score = self._score(self._predict_parts(val_parts), y_val)
            if score > best or best_state is None:
                best, best_state = score, {k: v.clone() for k, v in self.net.state_dict().items()}
        self.net.load_state_dict(best_state)

    def _score(self, pred: np.ndarray, y: np.ndarray) -> float:
        if self.kind == "classification":
            return float(np.mean(pred == y))
        return -float(np.mean((pred - y) ** 2))

    def _predict_parts(self, parts) -> np.ndarray:
        self.net.eval()
        out = np.empty(len(parts), dtype=object if self.kind == "classification" else float)
        with torch.no_grad():
            for idx in _groups(parts).values():
                pred = self.net(_batch(parts, idx, self.scales))
                out[idx] = (self.classes[pred.argmax(1).numpy()] if self.kind == "classification"
                            else pred[:, 0].numpy() * self.std + self.mean)
        return out

    def predict(self, rows: Rows) -> np.ndarray:
        with plain_kernels():
            return self._predict_parts(_parts(rows))
