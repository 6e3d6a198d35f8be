"""The ``neuron_sets`` learned baseline: a permutation-invariant set network over per-neuron
tokens, for a zoo of any architecture (MLP, CNN, ResNet, ViT, GPT, PINN) without a spec per
architecture.

Why this design. The field's methods for networks with convolutions, residuals, normalization and
attention are graph metanetworks over the computation graph (Kofinas et al. 2024, Lim et al.
2024) and SANE's token sequences (Schürholt et al. 2024); each needs the graph of the module (or a
tokenizer written per architecture), which a zoo row does not carry: it carries the layout
(tensor names, shapes, offsets). What the layout does give is every tensor's output units, and
the symmetries of all these architectures act on units: permuting a layer's hidden units (an
MLP's neurons, a convolution's channels with their BatchNorm parameters and statistics, an
attention layer's heads or the dimensions within a head) permutes the rows of the tensors that
write them and the columns of the tensors that read them. So:

* **tokens** — one per output unit of every tensor (a row of a Linear weight, a conv filter over
  in × kh × kw, a row of an attention in-projection or an embedding; each value of a 1-D tensor
  that is no unit's bias). A token's features are statistics of the multiset of its incoming
  values (mean |w|, mean, std, min, deciles, quartiles, median, max: unchanged by any permutation
  of the previous layer's units) plus the unit's own scalars: its bias and, after a convolution,
  its BatchNorm weight, bias, running mean and variance (:func:`tensor_sets`). Values are sorted
  before any sum, so a permuted row gives bit-identical features.
* **sets** — a shared MLP maps each token (with a learned embedding of its tensor's position in
  the layout) to a vector; mean and max over a tensor's tokens pool its units away, which makes
  the output invariant to permuting them — hidden units, conv channels, attention heads and the
  dimensions inside a head alike. A tensor with more units than ``token_cap`` keeps ``token_cap``
  tokens at evenly spaced ranks of its tokens sorted by their features: the chosen multiset
  depends on the multiset of units only, so the cap keeps the invariance exact and bounds memory
  (a ResNet-50 at width 256 has 8,192-unit layers, a GPT 50,257 vocabulary rows).
* **layers** — the pooled vectors of the tensors (plus log2 of the tensor's unit count and
  fan-in: the width) go through one small transformer block over the layout's tensors, mean
  pooled, to a head.

It is a DeepSets / neural-functional-style invariant model (Zaheer et al. 2017; the invariant
"statistics then pool" end of Zhou et al. 2023's NFN family and of Unterthiner et al. 2020's
StatNN, learned end to end) — less expressive than an equivariant NFN or a graph metanetwork,
which see how units connect across layers, but it applies to every layout. Plain torch: a graph
library (PyTorch Geometric) would only help with the computation graph this method avoids.
Trained by the learned baselines' shared loop (:mod:`phasezoo.wsl.fitting`), as ``nfn`` is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from phasezoo.runtime import seeded
from phasezoo.weights import num_values
from phasezoo.wsl.fitting import Targets, fit_best_epoch, predict_batches
from phasezoo.wsl.methods import MethodUnsupported, Rows

# Each token's statistics of its incoming values: mean |w|, mean, std, then these quantiles
# (min, deciles 1 and 9, quartiles, median, max).
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
STATISTICS = 3 + len(QUANTILES)
PREDICT_ROWS = 256  # rows per prediction batch: bounds the memory of a forward pass


@dataclass(frozen=True)
class NeuronSetSettings:
    """Network, training and memory settings (small: the benchmark fits one network per split)."""

    hidden: int = 32  # token and tensor vector size
    token_cap: int = 64  # tokens kept per tensor (evenly spaced ranks above it)
    blocks: int = 1  # transformer blocks over the layout's tensors
    heads: int = 4  # their attention heads (hidden must be a multiple)
    epochs: int = 20
    lr: float = 3e-3
    # 16, not nfn's 32: twice the steps for a small zoo's few rows (a planted signal in 48
    # ResNet rows, tests/test_neuron_sets.py: R² 0.22–0.91 over 5 seeds at 32, 0.90–0.96 at 16)
    batch_size: int = 16
    # The token features of a zoo are kept in memory (rows × tensors × tokens × features float32);
    # a zoo needing more is refused before a row is read, naming this setting and token_cap.
    max_feature_mb: float = 2048.0


@dataclass
class TensorSet:
    """One tensor's tokens: its ``host`` entry's units (dim 0; a 0-D or 1-D tensor's values are
    its units) and the 1-D entries ``attached`` to them (one scalar per unit)."""

    host: dict
    attached: list[dict] = field(default_factory=list)

    @property
    def units(self) -> int:
        """How many tokens: the host's first dimension (1 for a scalar)."""
        return int(self.host["shape"][0]) if self.host["shape"] else 1

    @property
    def fan_in(self) -> int:
        """Values per token: the product of the host's other dimensions."""
        return math.prod(self.host["shape"][1:])


def _prefix(entry: dict) -> str:
    """The module that owns a state entry (its name less the last component)."""
    return entry["name"].rpartition(".")[0]


def _floating(entry: dict) -> bool:
    """A float tensor (not an integer counter such as BatchNorm's ``num_batches_tracked``)."""
    return getattr(torch, entry["dtype"]).is_floating_point


def tensor_sets(layout: dict) -> list[TensorSet]:
    """The layout's float tensors as token sets, in layout order.

    A 1-D entry joins the set before it as one scalar per unit when its length is that set's
    unit count and it belongs to the same module (a bias, a LayerNorm's bias with its weight), or
    to a BatchNorm module (one with ``running_mean``) that directly follows it (a convolution's
    or a Linear layer's normalization). Every other entry starts its own set. Integer entries
    (BatchNorm's step counter) are no unit's value and are left out.
    """
    entries = [e for e in layout["entries"] if _floating(e)]
    batchnorms = {_prefix(e) for e in entries if e["name"].endswith("running_mean")}
    sets: list[TensorSet] = []
    modules: set[str] = set()  # modules seen since the last set's host
    for e in entries:
        last = sets[-1] if sets else None
        if (last is not None and len(e["shape"]) == 1 and e["shape"][0] == last.units
                and (_prefix(e) == _prefix(last.host)
                     or (_prefix(e) in batchnorms and modules <= {_prefix(last.host), _prefix(e)}))):
            last.attached.append(e)
            modules.add(_prefix(e))
            continue
        sets.append(TensorSet(e))
        modules = {_prefix(e)}
    return sets


def structure(layout: dict) -> tuple[int, ...]:
    """What the network's shape depends on: the number of sets and each set's attached scalars
    (rows of one architecture at any width share it)."""
    return tuple(len(s.attached) for s in tensor_sets(layout))


def _quantiles(ordered: np.ndarray) -> list[np.ndarray]:
    """:data:`QUANTILES` of each row of an already sorted matrix (linear interpolation, as
    ``numpy.quantile``'s default)."""
    n = ordered.shape[1]
    out = []
    for q in QUANTILES:
        pos = q * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        out.append(ordered[:, lo] + (ordered[:, hi] - ordered[:, lo]) * (pos - lo))
    return out


def set_tokens(flat: np.ndarray, s: TensorSet, slots: int) -> np.ndarray:
    """Every unit's features: :data:`STATISTICS` statistics of its incoming values (sorted
    first, so their order cannot change a bit of the result), then its attached scalars,
    zero-padded to ``slots``; one row per unit."""
    h = s.host
    values = torch.from_numpy(np.asarray(flat[h["offset"]:h["offset"] + s.units * s.fan_in],
                                         dtype=np.float32)).view(s.units, s.fan_in)
    ordered = torch.sort(values, dim=1).values.numpy().astype(np.float64)
    stats = [np.abs(ordered).mean(axis=1), ordered.mean(axis=1), ordered.std(axis=1),
             *_quantiles(ordered)]
    scalars = [np.asarray(flat[a["offset"]:a["offset"] + s.units], dtype=np.float64)
               for a in s.attached]
    pad = [np.zeros(s.units)] * (slots - len(scalars))
    return np.stack(stats + scalars + pad, axis=1)


def rank_sample(tokens: np.ndarray, cap: int) -> np.ndarray:
    """At most ``cap`` tokens: all of them sorted by their features (mean |w| first), or those
    at evenly spaced ranks of that order. Which are kept depends on the multiset of tokens alone
    (ties are identical tokens), so permuting the units cannot change it."""
    order = np.lexsort(tokens.T[::-1])
    if len(order) > cap:
        order = order[np.round(np.linspace(0, len(order) - 1, cap)).astype(int)]
    return tokens[order]


@dataclass(frozen=True)
class TokenArrays:
    """A zoo's tokens: ``tokens`` (rows, sets, k, features), ``counts`` (rows, sets: how many of
    the k slots hold a token) and ``sizes`` (rows, sets, 2: log2 of units and fan-in); ``done``
    marks the rows computed so far (filled lazily, each row once)."""

    tokens: np.ndarray
    counts: np.ndarray
    sizes: np.ndarray
    done: np.ndarray


def row_tokens(flat: np.ndarray, sets: list[TensorSet], k: int, slots: int,
               out: TokenArrays, i: int) -> None:
    """Row ``i``'s tokens, written into ``out``."""
    for g, s in enumerate(sets):
        tokens = rank_sample(set_tokens(flat, s, slots), k)
        out.tokens[i, g, :len(tokens)] = tokens
        out.counts[i, g] = len(tokens)
        out.sizes[i, g] = (math.log2(s.units), math.log2(max(s.fan_in, 1)))
    out.done[i] = True


def _table_arrays(rows: Rows, settings: NeuronSetSettings) -> tuple[TokenArrays, list]:
    """The token arrays of ``rows``' whole table (allocated once per table and shared through
    the rows' feature cache, which the benchmark shares between its fits) and the first row's
    sets; checks every layout's structure and the arrays' size before any row is read.

    Raises:
        MethodUnsupported: if the rows' layouts differ in structure (:func:`structure`) or the
            arrays would exceed ``max_feature_mb``.
    """
    layouts = rows.table.layouts
    shapes = {structure(layout) for layout in layouts}
    if len(shapes) > 1:
        raise MethodUnsupported("neuron_sets: the zoo's rows differ in their tensors "
                                f"({len(shapes)} layouts with different tensor counts); one "
                                "network reads one layout at any width")
    sets = tensor_sets(layouts[0])
    slots = max(len(s.attached) for s in sets)
    k = min(settings.token_cap, max(s.units for layout in layouts for s in tensor_sets(layout)))
    key = f"neuron_sets[token_cap={settings.token_cap}]"
    cache = rows._features  # the benchmark's per-zoo cache (phasezoo.wsl.methods.Rows)
    if key + "/tokens" not in cache:
        n, features = len(layouts), STATISTICS + slots
        mb = n * len(sets) * k * features * 4 / 2**20
        if mb > settings.max_feature_mb:
            raise MethodUnsupported(
                f"neuron_sets: the tokens of {n:,} rows ({len(sets)} tensors × {k} tokens × "
                f"{features} features) need {mb:,.0f} MB, more than max_feature_mb="
                f"{settings.max_feature_mb:g} (lower token_cap or raise it)")
        cache |= {key + "/tokens": np.zeros((n, len(sets), k, features), np.float32),
                  key + "/counts": np.zeros((n, len(sets)), np.int64),
                  key + "/sizes": np.zeros((n, len(sets), 2), np.float32),
                  key + "/done": np.zeros(n, bool)}
    arrays = TokenArrays(*(cache[f"{key}/{name}"] for name in ("tokens", "counts", "sizes",
                                                                "done")))
    return arrays, sets


def token_arrays(rows: Rows, settings: NeuronSetSettings) -> TokenArrays:
    """The tokens of ``rows`` (in their order), computed for the rows not done yet, one row in
    memory at a time, with a progress bar.

    Raises:
        ValueError: if a row's length is not its layout's (a damaged zoo), naming the row.
    """
    from tqdm.auto import tqdm

    arrays, sets = _table_arrays(rows, settings)
    k, slots = arrays.tokens.shape[2], arrays.tokens.shape[3] - STATISTICS
    todo = np.unique(rows.index[~arrays.done[rows.index]])
    missing = Rows(rows.table, todo)
    for i, flat in tqdm(zip(todo, missing.weights()), total=len(todo), leave=False,
                        desc="neuron_sets tokens", unit="row", disable=None):
        expected = num_values(rows.table.layouts[i]["entries"])
        if len(flat) != expected:
            raise ValueError(f"neuron_sets: row {i} has {len(flat):,} values, its layout "
                             f"{expected:,}")
        row_tokens(flat, tensor_sets(rows.table.layouts[i]), k, slots, arrays, int(i))
    return TokenArrays(arrays.tokens[rows.index], arrays.counts[rows.index],
                       arrays.sizes[rows.index], arrays.done[rows.index])


@dataclass(frozen=True)
class Scaling:
    """Each (tensor, feature)'s and each tensor size's mean and standard deviation over the
    training rows' tokens: features on one scale per layer, as ``nfn`` scales each layer."""

    token_mean: np.ndarray
    token_std: np.ndarray
    size_mean: np.ndarray
    size_std: np.ndarray

    @classmethod
    def of(cls, a: TokenArrays) -> Scaling:
        """The scaling of the training rows ``a`` (padding slots left out)."""
        valid = (np.arange(a.tokens.shape[2]) < a.counts[..., None])[..., None]  # r, g, k, 1
        n = valid.sum(axis=(0, 2))
        x = a.tokens.astype(np.float64)
        mean = (x * valid).sum(axis=(0, 2)) / n
        std = np.sqrt((((x - mean[None, :, None]) ** 2) * valid).sum(axis=(0, 2)) / n)
        return cls(mean, np.where(std > 0, std, 1.0), a.sizes.mean(axis=0),
                   np.where(a.sizes.std(axis=0) > 0, a.sizes.std(axis=0), 1.0))

    def batch(self, a: TokenArrays, index: list[int]) -> tuple[torch.Tensor, ...]:
        """The network's input for rows ``index`` of ``a``: standardized tokens squashed by
        asinh (a diverging model's huge weights stay finite and ordered), the token mask, the
        standardized sizes."""
        x = (a.tokens[index] - self.token_mean[None, :, None]) / self.token_std[None, :, None]
        mask = np.arange(a.tokens.shape[2]) < a.counts[index][..., None]
        sizes = (a.sizes[index] - self.size_mean) / self.size_std
        return (torch.from_numpy(np.arcsinh(x).astype(np.float32)), torch.from_numpy(mask),
                torch.from_numpy(sizes.astype(np.float32)))


class NeuronSetNet(nn.Module):
    """Tokens → per-tensor mean and max of a shared token MLP → a transformer over the tensors →
    mean → head (see the module docstring)."""

    def __init__(self, sets: int, features: int, outputs: int, s: NeuronSetSettings) -> None:
        super().__init__()
        h = s.hidden
        self.token_in, self.token_out = nn.Linear(features, h), nn.Linear(h, h)
        self.tensor_embed = nn.Embedding(sets, h)  # which tensor a token belongs to
        self.pool_in = nn.Linear(2 * h + 2, h)
        self.position = nn.Embedding(sets, h)  # where the tensor is in the layout
        self.mixer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(h, s.heads, 2 * h, dropout=0.0, batch_first=True),
            s.blocks, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, outputs))

    def forward(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        tokens, mask, sizes = batch
        ids = torch.arange(tokens.shape[1])
        x = torch.relu(self.token_in(tokens) + self.tensor_embed(ids)[None, :, None])
        x = torch.relu(self.token_out(x)) * mask[..., None]  # ≥ 0; padding slots zero
        mean = x.sum(2) / mask.sum(2, keepdim=True).clamp(min=1)
        z = self.pool_in(torch.cat([mean, x.amax(2), sizes], dim=-1)) + self.position(ids)
        return self.head(self.mixer(z).mean(1))


class NeuronSetMethod:
    """The ``neuron_sets`` baseline as a :class:`~phasezoo.wsl.methods.Method`: per-unit tokens
    of every tensor, pooled per tensor, mixed over tensors; any architecture. Fit like ``nfn``
    (the shared loop: Adam, the best validation epoch kept) on the same tasks and splits."""

    name = "neuron_sets"
    # What the benchmark fits it on (phasezoo.wsl.methods.Method), as nfn: the two headline
    # tasks on the random split.
    tasks, splits = ("test_accuracy", "phase"), ("random",)

    def __init__(self, settings: NeuronSetSettings = NeuronSetSettings()) -> None:
        self.settings = settings

    def fit(self, train: Rows, y: np.ndarray, val: Rows, y_val: np.ndarray, kind: str,
            seed: int) -> None:
        s = self.settings
        a, a_val = token_arrays(train, s), token_arrays(val, s)
        self.structure = structure(train.layouts[0])
        self.scaling, self.targets = Scaling.of(a), Targets(y, kind)
        with seeded(seed):
            self.net = NeuronSetNet(a.tokens.shape[1], a.tokens.shape[3], self.targets.outputs, s)
        fit_best_epoch(self.net, lambda idx: self.scaling.batch(a, idx), [list(range(len(y)))],
                       self.targets, lambda: self._predict(a_val), y_val, epochs=s.epochs,
                       lr=s.lr, batch_size=s.batch_size, seed=seed)

    def _predict(self, a: TokenArrays) -> np.ndarray:
        n = len(a.counts)
        groups = [list(range(i, min(i + PREDICT_ROWS, n))) for i in range(0, n, PREDICT_ROWS)]
        return predict_batches(self.net, lambda idx: self.scaling.batch(a, idx), groups, n,
                               self.targets)

    def predict(self, rows: Rows) -> np.ndarray:
        """Predictions for ``rows``.

        Raises:
            ValueError: if their layout's structure is not the one the method was fit on.
        """
        if len(rows) and structure(rows.layouts[0]) != self.structure:
            raise ValueError("neuron_sets: these rows' tensors are not those of the rows it was "
                             "fit on")
        return self._predict(token_arrays(rows, self.settings))
