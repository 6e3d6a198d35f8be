"""A published zoo is untrusted input (downloaded from the Hub): verify passes only what it
checked, every reader verifies first, and no zoo makes phasezoo read, download or allocate what
it did not publish. Each case tampers with a copy of the real tiny zoo, re-writing SHA256SUMS
where the check under test must be the one that fires."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from phasezoo.cli import main
from phasezoo.verify import VerifyError, verify
from phasezoo.zoo import content_addressed, load_model, write_checksums


def _copy(published, tmp_path: Path) -> Path:
    zoo = tmp_path / "zoo"
    shutil.copytree(published[3], zoo)
    return zoo


def _shard(zoo: Path) -> Path:
    (shard,) = sorted((zoo / "data").glob("*.h5"))
    return shard


def _edit_card(zoo: Path, edit) -> None:
    """``edit(header)`` applied to the card's YAML header; checksums re-written."""
    card = zoo / "README.md"
    _, head, body = card.read_text().split("---\n", 2)
    header = yaml.safe_load(head)
    edit(header)
    card.write_text(f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n{body}")
    write_checksums(zoo)


def _edit_shard(zoo: Path, edit) -> Path:
    """``edit(h5py.File)`` applied to the shard, renamed by content as publish names shards (the
    ``datasets`` cache is keyed by file names) and the card and checksums updated."""
    shard = _shard(zoo)
    with h5py.File(shard, "r+") as f:
        edit(f)
    renamed = content_addressed(shard)
    card = zoo / "README.md"
    card.write_text(card.read_text().replace(shard.name, renamed.name))
    write_checksums(zoo)
    return renamed


def _set_layouts(f: h5py.File, edit) -> None:
    layouts = [json.loads(t) for t in f["layout"][:]]
    for layout in layouts:
        edit(layout)
    f["layout"][:] = np.array([json.dumps(x) for x in layouts], dtype=h5py.string_dtype())


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()  # the last line: datasets' progress bars come first
    return code, err.splitlines()[-1] + "\n" if err else ""


@pytest.mark.parametrize("entry, why", [
    ("../outside.h5", "not a plain relative path inside the zoo"),
    ("/tmp/outside.h5", "is an absolute path"),
    ("hf://datasets/someone/zoo/data/x.h5", "is a URL"),
    ("https://example.com/x.h5", "is a URL"),
    ("data/*.h5", "is a glob pattern"),
    ("data/.hidden.h5", "is not a visible shard"),
    ("data/unlisted.h5", "is not listed in SHA256SUMS"),
])
def test_data_files_may_name_only_listed_shards_inside_the_zoo(published, tmp_path, entry, why):
    zoo = _copy(published, tmp_path)
    shutil.copy(_shard(zoo), zoo / "data" / ".hidden.h5")  # hidden: listed, never a shard

    def point(header):
        header["configs"][0]["data_files"][0]["path"].append(entry)
    _edit_card(zoo, point)
    with pytest.raises(VerifyError, match=f"^README.md: data_files entry '{re.escape(entry)}'.*{why}"):
        verify(zoo)


def test_every_listed_shard_is_one_the_card_loads_and_no_config_is_added(published, tmp_path):
    zoo = _copy(published, tmp_path)
    shutil.copy(_shard(zoo), zoo / "data" / "extra.h5")
    write_checksums(zoo)
    with pytest.raises(VerifyError, match="^data/extra.h5: listed in SHA256SUMS but not in the "
                                          "card's data_files"):
        verify(zoo)
    (zoo / "data" / "extra.h5").unlink()
    _edit_card(zoo, lambda h: h["configs"].append(dict(h["configs"][0], config_name="b")))
    with pytest.raises(VerifyError, match=r"config 1 \('b'\) is not the split config publish "
                                          "derives from splits.json"):
        verify(zoo)
    _edit_card(zoo, lambda h: h["configs"].pop())
    assert verify(zoo) == 6
    _edit_card(zoo, lambda h: h["configs"][0].update(data_dir="/etc"))
    with pytest.raises(VerifyError, match="config key 'data_dir' is not one publish writes"):
        verify(zoo)


@pytest.mark.parametrize("name", ["../outside", "/etc/hostname", "data/../../outside"])
def test_a_checksum_line_leaving_the_zoo_is_refused_by_name_whether_or_not_it_exists(
        published, tmp_path, name):
    zoo = _copy(published, tmp_path)
    sums = zoo / "SHA256SUMS"
    original = sums.read_text()
    messages = []
    for exists in (True, False):  # the same line either way: no file-existence oracle
        target = tmp_path / "outside"
        target.write_text("x") if exists else target.unlink(missing_ok=True)
        sums.write_text(original + f"{'0' * 64}  {name}\n")
        with pytest.raises(VerifyError, match=r"^SHA256SUMS: line 4: .* (absolute|not a plain)"):
            verify(zoo)
        try:
            verify(zoo)
        except VerifyError as e:
            messages.append(str(e))
    assert messages[0] == messages[1]


def test_a_listed_link_out_of_the_zoo_is_refused(published, tmp_path):
    zoo = _copy(published, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not the zoo's")
    (zoo / "notes.txt").symlink_to(secret)
    write_checksums(zoo)  # lists the link with the digest of what it points at
    with pytest.raises(VerifyError, match="^notes.txt: listed in SHA256SUMS but leads outside"):
        verify(zoo)


def test_the_card_row_count_and_read_batch_are_checked_against_the_shards(published, tmp_path):
    zoo = _copy(published, tmp_path)
    _edit_card(zoo, lambda h: h["dataset_info"]["splits"][0].update(num_examples=7))
    with pytest.raises(VerifyError, match=r"declares 7 rows \(num_examples\), the shards hold 6"):
        verify(zoo)
    _edit_card(zoo, lambda h: h["dataset_info"]["splits"][0].update(num_examples=6))
    assert verify(zoo) == 6
    _edit_card(zoo, lambda h: h["configs"][0].update(batch_size=10 ** 9))
    with pytest.raises(VerifyError, match=r"batch_size is 1000000000; rows of 12,730 values are "
                                          r"read 1000 at a time"):
        verify(zoo)


def test_aliased_layout_offsets_are_refused_by_verify_and_load_model(published, tmp_path):
    zoo = _copy(published, tmp_path)
    with h5py.File(_shard(zoo), "r") as f:
        row = {"weights": f["weights"][0], "layout": f["layout"][0].decode()}
    model = load_model(row)  # the row as published loads
    layout = json.loads(row["layout"])
    first = layout["entries"][0]
    layout["entries"][1]["offset"] = 0  # the bias reads the weight's first values
    with pytest.raises(ValueError, match=f"entry '{layout['entries'][1]['name']}' starts at "
                                         "offset 0, not"):
        load_model({**row, "layout": json.dumps(layout)})

    def alias(lay):
        lay["entries"][1]["offset"] = 0
    _edit_shard(zoo, lambda f: _set_layouts(f, alias))
    with pytest.raises(VerifyError, match="column 'layout' row 0: layout: entry .* starts at "
                                          "offset 0"):
        verify(zoo)
    assert first["name"] in dict(model.state_dict())


def test_a_compressed_weights_column_that_claims_more_than_it_stores_is_refused(published,
                                                                              tmp_path):
    zoo = _copy(published, tmp_path)

    def rechunk(f):
        w = f["weights"][:]
        del f["weights"]
        f.create_dataset("weights", data=w, chunks=(1, w.shape[1]), compression="gzip")
    _edit_shard(zoo, rechunk)
    with pytest.raises(VerifyError, match="column 'weights' is chunked, compressed, virtual or "
                                          "external"):
        verify(zoo)


def test_a_link_to_another_file_in_a_shard_is_refused(published, tmp_path):
    zoo = _copy(published, tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(6)
    _edit_shard(zoo, lambda f: f.__setitem__("extra", h5py.ExternalLink(str(other), "x")))
    with pytest.raises(VerifyError, match="'extra' is not a dataset of the shard"):
        verify(zoo)


def test_a_layout_claiming_a_huge_architecture_is_refused_before_it_is_built(published,
                                                                             tmp_path):
    zoo = _copy(published, tmp_path)
    with h5py.File(_shard(zoo), "r") as f:
        row = {"weights": f["weights"][0], "layout": json.loads(f["layout"][0])}
    deep = {**row["layout"], "architecture": {**row["layout"]["architecture"], "kwargs": {
        **row["layout"]["architecture"]["kwargs"], "depth": 100_000}}}
    start = time.perf_counter()
    with pytest.raises(ValueError, match="kwarg depth=100000 is too large for its 4 entries"):
        load_model({**row, "layout": json.dumps(deep)})
    wide = {**deep, "architecture": {**deep["architecture"], "kwargs": {
        **deep["architecture"]["kwargs"], "depth": 1, "width": 3000}}}
    with pytest.raises(ValueError, match="outgrows its 4 entries of 12,730 values"):
        load_model({**row, "layout": json.dumps(wide)})
    assert time.perf_counter() - start < 2  # refused, not built (17 s before)
    with pytest.raises(ValueError, match="layout: .* more than a layout may hold"):
        load_model({**row, "layout": json.dumps({**deep, "pad": "x" * (2 << 20)})})
    _edit_shard(zoo, lambda f: _set_layouts(f, lambda lay: lay["architecture"]["kwargs"].update(
        width=3000)))
    with pytest.raises(VerifyError, match="row 0: layout: architecture 'mlp' outgrows"):
        verify(zoo)


def test_a_broken_card_header_is_one_line_naming_the_line(published, tmp_path, capsys):
    zoo = _copy(published, tmp_path)
    card = zoo / "README.md"
    card.write_text(card.read_text().replace("configs:\n", "configs: [\n", 1))
    write_checksums(zoo)
    with pytest.raises(VerifyError, match=r"^README.md: line \d+: the YAML header is not valid"):
        verify(zoo)
    code, err = main(["verify", str(zoo)]), capsys.readouterr().err
    assert code == 2 and err.startswith("phasezoo verify: error: README.md: line ")
    assert err.count("\n") == 1  # one line, no traceback


def test_report_commands_verify_a_zoo_first(published, tmp_path, capsys):
    zoo = _copy(published, tmp_path)
    shard = _shard(zoo)
    shard.write_bytes(shard.read_bytes()[:1000])  # truncated: a datasets traceback before
    for command in ("benchmark", "diagnose", "studies"):
        code, err = _cli([command, str(zoo), "--out", str(tmp_path / "out")], capsys)
        assert code == 2 and err == (f"phasezoo {command}: error: data/{shard.name}: SHA-256 "
                                     "mismatch (corrupted or modified)\n")
    results = tmp_path / "results" / "tiny"
    results.mkdir(parents=True)
    (results / "phases.parquet").write_bytes(b"")
    code, err = _cli(["benchmark", str(results), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err == (f"phasezoo benchmark: error: {results}: not a published zoo "
                                 "(no SHA256SUMS, no README.md card); `phasezoo publish` writes "
                                 "one to zoos/tiny\n")


def test_a_leaky_splits_file_is_refused_naming_the_split_and_a_cell(tmp_path):
    from phasezoo.splits import read_splits

    meta = pd.DataFrame({"cell": ["a", "b", "c", "d"], "phase": ["I"] * 4,
                         "load_value": [1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / "splits.json"
    good = {"name": "random", "seed": 0, "train": ["a", "b"], "val": ["c"], "test": ["d"]}
    path.write_text(json.dumps({"format": 1, "splits": [good]}))
    assert read_splits(path, meta).shipped[0][0] == ("random", ("a", "b"), ("c",), ("d",))
    path.write_text(json.dumps({"format": 1, "splits": [dict(good, train=["a", "b", "d"])]}))
    with pytest.raises(ValueError, match=r"split 0 \(random, seed 0\) leaks: cell 'd' is in "
                                         "both train and test"):
        read_splits(path, meta)
    path.write_text(json.dumps({"format": 1, "splits": [dict(good, test=["d", "zz"])]}))
    with pytest.raises(ValueError, match=r"names cells the zoo does not have: \['zz'\]"):
        read_splits(path, meta)


def _hp(f, column: str, value: str) -> None:
    f[column][:] = np.array([value] * f[column].shape[0], dtype=h5py.string_dtype())


@pytest.mark.parametrize("column, value, why", [
    ("hp_dataset", "no-such-set", "hp_dataset 'no-such-set' is not a registered dataset"),
    ("hp_dataset_options", json.dumps({"options": {"source": "/etc/passwd"}}),
     "option source='/etc/passwd' names a local file"),
    ("hp_dataset_options", json.dumps({"image_size": 4096}),
     r"image_size=4096 is not the models' input shape \[1, 28, 28\]"),
])
def test_a_zoo_cannot_make_the_studies_read_a_file_it_names(published, tmp_path, capsys,
                                                           column, value, why):
    zoo = _copy(published, tmp_path)

    def name_data(f):
        if column not in f:  # the tiny zoo has no dataset options: add the column
            f.create_dataset(column, data=np.array([value] * 6, dtype=h5py.string_dtype()))
        _hp(f, column, value)
    _edit_shard(zoo, name_data)
    if column not in {c["name"] for c in _features(zoo)}:
        _edit_card(zoo, _declare(column))
    code, err = _cli(["studies", str(zoo), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 2 and err.startswith(f"phasezoo studies: error: {zoo}: cell ")
    assert re.search(why, err)


def _features(zoo: Path) -> list[dict]:
    from phasezoo.zoo_folder import read_card_header

    return read_card_header(zoo / "README.md")["configs"][0]["features"]


def _declare(column: str):
    def add(header):
        feats = header["configs"][0]["features"] + [{"name": column, "dtype": "string"}]
        feats.sort(key=lambda f: f["name"])
        header["configs"][0]["features"] = header["dataset_info"]["features"] = feats
    return add


def test_the_studies_download_only_with_allow_download(published, tmp_path, capsys,
                                                       monkeypatch):
    """A zoo naming torchvision's MNIST, absent from the data root: refused offline with one
    line; with --allow-download the loader is let through to the network (here: refused by a
    stub, so nothing is fetched by the test)."""
    from phasezoo_testkit import DATA_ROOT

    zoo = _copy(published, tmp_path)
    _edit_shard(zoo, lambda f: _hp(f, "hp_dataset", "mnist"))
    empty = tmp_path / "empty-root"
    args = ["studies", str(zoo), "--out", str(tmp_path / "out"), "--quiet", "--data-root",
            str(empty)]
    code, err = _cli(args, capsys)
    assert code == 2 and err.endswith("dataset 'mnist' is not in " + str(empty) + " and would be "
                                      "downloaded (the zoo names it); pass --allow-download to "
                                      "let the studies download it\n")
    import socket

    reached = []

    def stub(host, *args, **kwargs):
        reached.append(host)
        raise OSError("no network in tests")
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    code, err = _cli(args + ["--allow-download"], capsys)
    assert code == 2 and reached and "--allow-download" not in err
    assert DATA_ROOT.is_dir()  # the offline data the other studies tests use is untouched


@pytest.mark.parametrize("source, allow_local, refused", [
    ("corpus.txt", False, True),  # a downloaded zoo never names a file to read
    ("corpus.txt", True, False),  # the workflow's own zoo, under data_root (--allow-local-data)
    ("/etc/passwd", True, True),  # outside data_root: refused even then
    ("../secrets/notes.txt", True, True),
    ("pydoc", False, False),  # ships with CPython: not a local file the zoo chose
])
def test_local_text_sources_only_for_the_workflows_own_zoo(source, allow_local, refused):
    from phasezoo.rows import zoo_data_problem

    hp = {"dataset": "text", "dataset_options": {"options": {"source": source}}}
    problem = zoo_data_problem(hp, None, allow_local)
    assert (problem is not None) == refused
    if refused:
        assert "names a local file" in problem
