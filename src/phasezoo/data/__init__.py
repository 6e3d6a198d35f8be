"""Dataset registry: a name becomes a train/test split of tensors, resident on one device.

Every dataset is loaded whole into memory as tensors — float32 images ``(N, C, H, W)`` with
int64 labels, int64 token sequences, or float32 collocation points — so training never needs
DataLoader workers (zoo models are small; the data is read once per job). Adding a dataset is one
function decorated with :func:`register_dataset`; the registered ones live by modality in
:mod:`~phasezoo.data.image_sets`, :mod:`~phasezoo.data.corpora` and :mod:`~phasezoo.data.pde`.
The registry is :mod:`~phasezoo.data.registry`, the :class:`Split` and the loaders' shared
helpers :mod:`~phasezoo.data.split`; this module is the factory (:func:`create_dataset`) and a
cell's data (:func:`cell_split`) with the seeded subsets and image preparation it applies.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn import functional as F

from phasezoo.data.registry import DownloadError, dataset_fn, list_datasets
from phasezoo.data.split import DATA_FRACTION_SEED, Split, as_images, stratified_split
from phasezoo.recipe import Recipe
from phasezoo.registries import options_of, unknown_options

__all__ = ["DATA_FRACTION_SEED", "DownloadError", "Split", "as_images", "cell_split", "create_dataset",
           "list_datasets", "stratified_split"]



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
        DownloadError: (a ValueError) if the dataset is not in ``root`` and its download failed;
            the message starts with ``name``.
    """
    fn, options = dataset_fn(name), dict(options or {})
    problem = unknown_options("dataset", name, options, options_of("dataset", fn))
    if problem:
        raise ValueError(f"dataset.options: {problem}")
    try:
        split = fn(Path(root), **options)
    except DownloadError as e:
        raise DownloadError(f"{name}: {e}") from None
    split.info = {"name": name, "task": split.task.kind, **split.info,
                  **({"options": options} if options else {})}
    return standardize(split) if normalize and split.x_train.dim() == 4 else split


def cell_split(recipe: Recipe, root: str | Path, device: torch.device | str = "cpu") -> Split:
    """A cell's data: its dataset (resized, capped as configured), the training part cut to its
    data fraction, on ``device``.

    Order: load → :func:`prepare_images` → :func:`cap_sizes` → :func:`standardize` (when
    ``normalize``) → data fraction. Standardization therefore uses the per-channel mean and std of
    the whole *capped* training set, before the data fraction cuts it: every cell of a
    ``data_fraction`` axis sees its inputs on the same scale, and a smaller fraction is a subset of
    the same standardized rows (its own statistics would shift them). The test set is scaled with
    those training statistics.

    Subsets are stratified (for class labels) and drawn with fixed seeds, so every seed of a cell
    (and every stage) sees the same samples, and a smaller data fraction keeps a subset of the
    samples of a larger one. A ``beta`` load axis is the convection coefficient of the dataset (an
    option of the ``convection`` dataset): the axis value overrides ``dataset.options.beta``.
    """
    data = recipe.dataset
    options = {**data.options, **({"beta": recipe.beta} if recipe.beta is not None else {})}
    split = create_dataset(data.name, root, normalize=False, options=options)
    split = prepare_images(split, data.image_size, data.channels)
    split = cap_sizes(split, data.train_size, data.test_size)
    if data.normalize and split.x_train.dim() == 4:
        split = standardize(split)
    fraction = recipe.train.data_fraction
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
    """Keep exactly ``train_size`` training and ``test_size`` test samples (seeded subsets, see
    :func:`subset_size`: stratified for class labels, every class kept, each class within one
    sample of its proportional share unless that share is below one and it was raised to one).

    Raises:
        ValueError: if a cap is below the number of classes (a class would vanish).
    """
    parts = {}
    for part, cap in (("train", train_size), ("test", test_size)):
        x, y = getattr(split, f"x_{part}"), getattr(split, f"y_{part}")
        if cap is None or cap >= len(x):
            continue
        if _is_labels(y) and cap < split.num_classes:
            raise ValueError(f"dataset.{part}_size: {cap} samples cannot hold one of each of "
                             f"{split.num_classes} classes of '{split.info.get('name')}'")
        idx = subset_size(y, cap, seed=DATA_FRACTION_SEED)
        parts |= {f"x_{part}": x[idx], f"y_{part}": y[idx]}
    if not parts:
        return split
    return replace(split, **parts, info={**split.info, "train_size": train_size,
                                         "test_size": test_size})


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
    drops a class. Targets that are not class labels (token sequences, PDE targets) get a plain
    seeded subset of ``round(fraction * N)`` rows. The same (targets, fraction, seed) always give
    the same indices, and for one (targets, seed) a smaller fraction's indices are a subset of a
    larger one's (each class's samples are taken from the front of one seeded permutation).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"data fraction must be in (0, 1], got {fraction}")
    if not _is_labels(y):
        return _seeded_rows(len(y), max(1, round(fraction * len(y))), seed)
    return _stratified(y, lambda counts: [max(1, round(fraction * n)) for n in counts], seed)


def subset_size(y: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of a seeded subset of exactly ``size`` rows, stratified for class labels.

    Class quotas come from :func:`apportion` (largest remainder, at least one per class), so no
    class vanishes and each is within one sample of its proportional share whenever that share is
    at least one. Targets that are not class labels get a plain seeded subset.

    Raises:
        ValueError: if ``size`` is not in [1, N], or (class labels) below the number of classes.
    """
    if not 1 <= size <= len(y):
        raise ValueError(f"subset size must be in [1, {len(y)}], got {size}")
    if not _is_labels(y):
        return _seeded_rows(len(y), size, seed)
    return _stratified(y, lambda counts: apportion(counts, size, seed), seed)


def apportion(counts: list[int], total: int, seed: int = 0) -> list[int]:
    """Split ``total`` samples over classes of sizes ``counts`` in proportion (Hamilton's largest
    remainder method), with at least one sample per class.

    Classes whose proportional share is below one get one; the rest of ``total`` is shared in
    proportion among the other classes, repeated until every share is at least one. Each of those
    classes gets the floor of its share, and the samples left over go one each to the largest
    fractional parts. So every class is kept, the total is exact, and each class not raised to
    one is within one sample of its share (of ``total`` itself when no class was raised). Shares
    are compared exactly in integers; ties go by a permutation of the classes seeded with
    ``seed``, so equal classes are not favoured by their label.

    Raises:
        ValueError: if ``total`` is below the number of classes or above ``N``.
    """
    n, k = sum(counts), len(counts)
    if not k <= total <= n:
        raise ValueError(f"cannot apportion {total} samples over {k} classes of {n} samples: "
                         f"need {k} <= total <= {n}")
    free = list(range(k))
    while True:  # raise classes with a share below one to one, reshare the rest
        rest, size = total - (k - len(free)), sum(counts[i] for i in free)
        small = [i for i in free if rest * counts[i] < size]
        if not small:
            break
        free = [i for i in free if i not in small]
    quota = [1] * k
    for i in free:
        quota[i] = rest * counts[i] // size
    rank = torch.randperm(k, generator=torch.Generator().manual_seed(seed)).tolist()
    by_remainder = sorted(free, key=lambda i: (rest * counts[i] % size, rank[i]), reverse=True)
    for i in by_remainder[:rest - sum(quota[i] for i in free)]:
        quota[i] += 1
    return quota


def _is_labels(y: torch.Tensor) -> bool:
    """Whether targets are class labels (1-D integers), the targets that subsets stratify."""
    return y.dim() == 1 and not y.is_floating_point()


def _seeded_rows(n: int, size: int, seed: int) -> torch.Tensor:
    """The first ``size`` rows of a seeded permutation of ``n``, sorted."""
    gen = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(n, generator=gen)[:size]).values


def _stratified(y: torch.Tensor, quotas: Callable[[list[int]], list[int]], seed: int) -> torch.Tensor:
    """Sorted indices taking ``quotas(class sizes)[c]`` samples of each class ``c`` (classes in
    sorted order) from the front of a per-class permutation drawn from one generator seeded with
    ``seed``: the permutations depend only on the class sizes, so a larger quota extends a smaller
    one's samples."""
    gen = torch.Generator().manual_seed(seed)
    members = [torch.nonzero(y == c).flatten() for c in torch.unique(y)]
    keep = [idx[torch.randperm(len(idx), generator=gen)[:q]]
            for idx, q in zip(members, quotas([len(idx) for idx in members]))]
    return torch.sort(torch.cat(keep)).values


# The registered datasets, by modality (imported last: they register themselves through the
# names above).
from phasezoo.data import corpora, image_sets, pde  # noqa: E402,F401
