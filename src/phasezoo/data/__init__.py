"""Dataset registry: a name becomes a train/test split of tensors, resident on one device.

Every dataset is loaded whole into memory as tensors — float32 images ``(N, C, H, W)`` with
int64 labels, int64 token sequences, or float32 collocation points — so training never needs
DataLoader workers (zoo models are small; the data is read once per job). Adding a dataset is one
function decorated with :func:`register_dataset`; the registered ones live by modality in
:mod:`~phasezoo.data.image_sets`, :mod:`~phasezoo.data.corpora` and :mod:`~phasezoo.data.pde`.
This module holds what they share: the :class:`Split`, the registry, a cell's data
(:func:`cell_split`) and the seeded subsets and image preparation it applies.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from phasezoo.tasks import Task

DATA_FRACTION_SEED = 0  # the training subset is part of the cell (its load), not of the seed
DatasetFn = Callable[..., "Split"]
_DATASETS: dict[str, DatasetFn] = {}
_TASKS: dict[str, str] = {}


@dataclass
class Split:
    """A train/test split held as tensors, plus what a card needs to describe it."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int  # classes, vocabulary size, or output size (PINN)
    info: dict = field(default_factory=dict)
    task: Task = field(default_factory=Task)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device | str) -> "Split":
        """Move every tensor to ``device`` once (training then indexes on the device)."""
        return replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                       x_test=self.x_test.to(device), y_test=self.y_test.to(device))


def register_dataset(fn: DatasetFn | None = None, *, task: str = "classification") -> Any:
    """Register ``fn(root, **options)`` under its name with '_' replaced by '-', with the kind of
    task it poses (known without loading the data, so the phases stage can read errors right)."""
    def deco(f: DatasetFn) -> DatasetFn:
        name = f.__name__.replace("_", "-")
        _DATASETS[name], _TASKS[name] = f, task
        return f
    return deco(fn) if fn is not None else deco


def task_kind(name: str) -> str:
    """The task kind of a registered dataset (see :mod:`phasezoo.tasks`)."""
    if name not in _TASKS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    return _TASKS[name]


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return sorted(_DATASETS)


def create_dataset(name: str, root: str | Path = "data", *, normalize: bool = True,
                   options: dict[str, Any] | None = None) -> Split:
    """Load a registered dataset as a :class:`Split` on the CPU.

    Args:
        name: registered name, see :func:`list_datasets`.
        root: folder for downloads (torchvision datasets download on first use).
        normalize: standardize each channel with the training mean and std (images only; token
            ids and PDE collocation points are never rescaled).
        options: the dataset's own keyword arguments (config ``dataset.options``).

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names) or an option is
            not one of the dataset's (the message lists them).
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    fn, options = _DATASETS[name], dict(options or {})
    valid = [p for p in inspect.signature(fn).parameters if p != "root"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"dataset.options: {unknown} not options of dataset '{name}'; "
                         f"its options are {valid}")
    split = fn(Path(root), **options)
    split.info = {"name": name, "task": split.task.kind, **split.info,
                  **({"options": options} if options else {})}
    return standardize(split) if normalize and split.x_train.dim() == 4 else split


def cell_split(hparams: dict, root: str | Path, device: torch.device | str = "cpu") -> Split:
    """A cell's data: its dataset (resized, capped as configured), the training part cut to its
    data fraction, on ``device``.

    Subsets are stratified (for class labels) and drawn with fixed seeds, so every seed of a cell
    (and every stage) sees the same samples. A ``beta`` load axis is the convection coefficient
    of the dataset (an option of the ``convection`` dataset).
    """
    prep = hparams.get("dataset_options", {})
    options = {**prep.get("options", {}), **({"beta": hparams["beta"]} if "beta" in hparams else {})}
    split = create_dataset(hparams["dataset"], root, normalize=False, options=options)
    split = prepare_images(split, prep.get("image_size"), prep.get("channels"))
    split = cap_sizes(split, prep.get("train_size"), prep.get("test_size"))
    if hparams["normalize"] and split.x_train.dim() == 4:
        split = standardize(split)
    fraction = hparams.get("data_fraction", 1.0)
    if fraction < 1:
        idx = subset_fraction(split.y_train, fraction, seed=DATA_FRACTION_SEED)
        split.x_train, split.y_train = split.x_train[idx], split.y_train[idx]
        split.info = {**split.info, "data_fraction": fraction, "data_fraction_seed": DATA_FRACTION_SEED}
    return split.to(device)


def prepare_images(split: Split, size: int | None, channels: int | None) -> Split:
    """Resize images to ``size``×``size`` (bilinear, antialiased) and convert to ``channels``
    (grey repeated to RGB, or RGB averaged to grey); ``None`` keeps the native value.

    Why: a CPU-sized twin of a zoo can train the full zoo's architecture on a small dataset that
    ships offline, at the input shape the architecture expects.
    """
    if size is None and channels is None:
        return split
    if split.x_train.dim() != 4:
        raise ValueError(f"dataset '{split.info.get('name')}': image_size/channels apply to "
                         f"images, not to inputs of shape {tuple(split.x_train.shape[1:])}")

    def convert(x: torch.Tensor) -> torch.Tensor:
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        if channels is not None and x.shape[1] != channels:
            x = x.mean(dim=1, keepdim=True) if channels == 1 else x[:, :1].expand(
                -1, channels, -1, -1).contiguous()
        return x

    return replace(split, x_train=convert(split.x_train), x_test=convert(split.x_test),
                   info={**split.info, "image_size": size, "channels": channels})


def cap_sizes(split: Split, train_size: int | None, test_size: int | None) -> Split:
    """Keep exactly ``train_size`` training and ``test_size`` test samples (seeded subsets;
    stratified for class labels, trimmed to the exact count after per-class rounding).

    Raises:
        ValueError: if a cap is below the number of classes (a class would vanish).
    """
    parts = {}
    for part, cap in (("train", train_size), ("test", test_size)):
        x, y = getattr(split, f"x_{part}"), getattr(split, f"y_{part}")
        if cap is None or cap >= len(x):
            continue
        labels = y.dim() == 1 and not y.is_floating_point()
        if labels and cap < split.num_classes:
            raise ValueError(f"dataset.{part}_size: {cap} samples cannot hold one of each of "
                             f"{split.num_classes} classes of '{split.info.get('name')}'")
        idx = _exactly(subset_fraction(y, cap / len(x), seed=DATA_FRACTION_SEED, exact=cap),
                       cap, len(x))
        parts |= {f"x_{part}": x[idx], f"y_{part}": y[idx]}
    if not parts:
        return split
    return replace(split, **parts, info={**split.info, "train_size": train_size,
                                         "test_size": test_size})


def _exactly(idx: torch.Tensor, cap: int, n: int) -> torch.Tensor:
    """``idx`` made exactly ``cap`` long after per-class rounding: a seeded few dropped, or added
    from the rows not chosen."""
    gen = torch.Generator().manual_seed(DATA_FRACTION_SEED)
    if len(idx) > cap:
        idx = idx[torch.randperm(len(idx), generator=gen)[:cap]]
    elif len(idx) < cap:
        rest = torch.ones(n, dtype=torch.bool)
        rest[idx] = False
        rest = torch.nonzero(rest).flatten()
        idx = torch.cat([idx, rest[torch.randperm(len(rest), generator=gen)[:cap - len(idx)]]])
    return torch.sort(idx).values


def standardize(split: Split) -> Split:
    """Per-channel standardization with statistics of the training images only."""
    dims = [0] + list(range(2, split.x_train.dim()))
    mean = split.x_train.mean(dim=dims, keepdim=True)
    std = split.x_train.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return replace(split, x_train=(split.x_train - mean) / std, x_test=(split.x_test - mean) / std,
                   info={**split.info, "normalization": "per-channel train mean/std"})


def subset_fraction(y: torch.Tensor, fraction: float, seed: int = 0,
                    exact: int | None = None) -> torch.Tensor:
    """Indices of a stratified, seeded subset holding ``fraction`` of every class.

    Each class keeps ``max(1, round(fraction * n_class))`` samples, so a small fraction never
    drops a class. Targets that are not class labels (token sequences, PDE targets) get a plain
    seeded subset of ``round(fraction * N)`` rows (``exact`` rows when given). The same
    (targets, fraction, seed) always give the same indices.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"data fraction must be in (0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    if y.dim() != 1 or y.is_floating_point():
        n = exact if exact is not None else max(1, round(fraction * len(y)))
        return torch.sort(torch.randperm(len(y), generator=gen)[:n]).values
    keep = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        n = max(1, round(fraction * len(idx)))
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.sort(torch.cat(keep)).values


def stratified_split(y: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with exactly ``test_per_class`` test samples of every class."""
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:test_per_class]
                           for c in np.unique(y)])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def _images(x: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8-range array → float32 tensor in [0, 1] shaped ``(N, C, H, W)``."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32).reshape(-1, *shape) / 255.0)


# The registered datasets, by modality (imported last: they register themselves through the
# names above).
from phasezoo.data import corpora, image_sets, pde  # noqa: E402,F401
from phasezoo.data.image_sets import read_tiny_imagenet  # noqa: E402,F401
