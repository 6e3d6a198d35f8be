"""Validation of a phasezoo config: strict YAML reading (duplicate keys and syntax errors as one
line), the JSON Schema with its defaults filled in, and the semantic checks the schema cannot
express (grid size, axis values, dataset and model options, seed pairs). Every failure is one
:class:`ConfigError` line naming the key. :mod:`phasezoo.config` builds the typed zoos from
what passes.

Checks that need the dataset and model registries (names, options) read them through
:mod:`phasezoo.registries`, without importing torch.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from phasezoo.folders import FolderError, check_folders
from phasezoo.protocols import fill_protocol_defaults
from phasezoo.model_sizes import data_io, parameter_count
from phasezoo.dataset_facts import DATASET_FACTS
from phasezoo.registries import DEPTH_MODELS, option_defaults, registered, unknown_options
from phasezoo.task_kinds import TaskKind, task_kind
from phasezoo.sources import source_problem

SCHEMA_FILE = "config.schema.yaml"
# Bounds on what reading a config may cost, whatever the file holds: a config is a few kB and a
# few thousand values (config/*.yaml and config/zoos/*.yaml together: 48 kB, 3,030 values), so
# both leave room.
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB, refused before it is parsed
MAX_YAML_NODES = 100_000  # values (scalars, lists, mappings) with every alias expanded
INTEGER_AXES = {"batch_size", "width"}


class ConfigError(ValueError):
    """A config that does not validate; the message names the offending key."""


def schema() -> dict[str, Any]:
    """The config JSON Schema, loaded from the package."""
    text = resources.files("phasezoo").joinpath(SCHEMA_FILE).read_text()
    return yaml.safe_load(text)


def zoo_default(section: str, key: str) -> Any:
    """The schema's default of a zoo's ``section.key`` (``benchmark.seeds``): what a command's
    option defaults to, so the CLI run by hand and the workflow's run of a config that leaves
    the key out are one value, kept in one place."""
    return zoo_key_schema(section, key)["default"]


@functools.lru_cache(maxsize=None)
def _section_defaults(section: str) -> str:
    """A zoo section with every key at its schema default (nested mappings filled too), as
    JSON text (cached; each caller gets its own copy)."""
    full = schema()
    instance: dict[str, Any] = {}
    sub = {"$defs": full["$defs"], **_zoo_properties()[section]}
    _DefaultFillingValidator(sub).validate(instance)
    return json.dumps(instance)


def zoo_section_defaults(section: str) -> dict[str, Any]:
    """Every key of a zoo's ``section`` at its schema default: what a recipe read from a record
    written before a key existed takes for it (:meth:`phasezoo.recipe.Recipe.from_record`)."""
    return json.loads(_section_defaults(section))


def zoo_key_schema(section: str, key: str) -> dict[str, Any]:
    """The schema of a zoo's ``section.key``: its type, default and description (what a stage's
    command-line option is built from, :func:`phasezoo.stages.flag_argument`)."""
    return _zoo_properties()[section]["properties"][key]


@functools.lru_cache(maxsize=1)
def _zoo_properties() -> dict[str, Any]:
    """The schema's zoo sections, read once per process (every CLI call builds its options'
    defaults from them; the schema takes ~60 ms to parse), with the sections defined once under
    ``$defs`` (train, metrics, phases, resources) resolved. Callers only read scalars from it."""
    full = schema()
    sections = full["$defs"]["zoo"]["properties"]
    return {name: full["$defs"][sub["$ref"].rsplit("/", 1)[-1]] if "$ref" in sub else sub
            for name, sub in sections.items()}


def read_config_file(path: str | Path) -> Any:
    """A config file's YAML, strictly: a missing file, non-UTF-8 text, a syntax error or a
    duplicate key is one ConfigError line naming the file. The Snakefile re-reads every config
    file Snakemake loaded with it, because Snakemake's own loader keeps the last of two
    duplicate keys without a word."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open("rb") as f:  # at most one byte past the limit, even if the file grows
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes, a config's limit "
                          "(a config is a few kB; is this the right file?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    return _plain_data(parse_yaml(text, str(path)), path)


# Snakemake's YAML template engine (yte) evaluates Python in a config file that sets this key.
TEMPLATE_MARKER = "__use_yte__"


def _plain_data(doc: Any, path: Path) -> Any:
    """``doc`` unless it asks for Snakemake's template engine: a config is data, and a file
    with the marker would run its ``?``-expressions as Python wherever Snakemake reads it."""
    if isinstance(doc, dict) and TEMPLATE_MARKER in doc:
        raise ConfigError(f"{path}: sets {TEMPLATE_MARKER}, Snakemake's template marker, which "
                          "would run Python expressions from the file; phasezoo configs are "
                          "plain YAML (remove the key)")
    return doc


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one, so two
    ``train:`` blocks in one zoo would drop the first without a word) and documents that expand
    past :data:`MAX_YAML_NODES` values or alias themselves.

    Why count while composing: an alias is one shared node to PyYAML, so nine lines of nested
    aliases (a "billion laughs") load at once, and then every walk over the config (the
    schema, the checks, a job's JSON) expands them and hangs. Each composed node's expanded
    size is the sum of its children's, known the moment it is complete, so the count costs one
    addition per node and stops the document at the first node past the limit, before any
    Python object is built."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> its size with aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        alias = self.peek_event() if self.check_event(yaml.AliasEvent) else None
        node = super().compose_node(parent, index)
        if alias is not None:
            if id(node) not in self._sizes:  # its anchor's node is still being composed
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{alias.anchor} refers to a node that contains it",
                    alias.start_mark)
            return node
        children = (node.value if isinstance(node, yaml.SequenceNode)
                    else [n for pair in node.value for n in pair]
                    if isinstance(node, yaml.MappingNode) else [])
        size = self._sizes[id(node)] = 1 + sum(self._sizes[id(c)] for c in children)
        if size > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"this node holds more than {MAX_YAML_NODES:,} values once its "
                "aliases are expanded, a config's limit (nested aliases: a billion laughs?)",
                node.start_mark)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *anchor' keys may be overridden, that is what they are for
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:
                continue  # unhashable key: SafeLoader raises its own error below
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first on line {first.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, origin: str) -> Any:
    """Parse YAML (or JSON) text, turning a syntax error or duplicate key into one ConfigError
    line naming ``origin`` (the file) and the line, instead of a PyYAML traceback."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as e:
        raise ConfigError(_yaml_message(e, origin)) from None


def _yaml_message(error: yaml.YAMLError, origin: str) -> str:
    """One line: ``origin, line L, column C: invalid YAML: problem (context on line K)``."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return f"{origin}: invalid YAML: {' '.join(str(error).split())}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    where = f"{origin}, line {mark.line + 1}, column {mark.column + 1}"
    detail = f" ({context} from line {context_mark.line + 1})" if context and context_mark else ""
    return f"{where}: invalid YAML: {problem}{detail}"


def validate(raw: dict[str, Any]) -> None:
    """Validate ``raw`` in place against the schema (filling defaults) plus semantic checks."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping of keys")
    _check_finite(raw, "")
    validator = _DefaultFillingValidator(schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    try:
        check_folders(raw)
    except FolderError as e:
        raise ConfigError(str(e)) from None
    for name, zoo in raw["zoos"].items():
        _check_grid_size(f"zoos.{name}", zoo, raw["max_cells"])
        _fill_derived_defaults(zoo)
        _check_zoo(name, zoo)
        _check_model_size(f"zoos.{name}", zoo, raw["max_params"])


def _check_finite(node: Any, where: str) -> None:
    """No NaN or infinity anywhere: YAML's ``.nan`` and ``.inf`` pass every JSON Schema bound
    (comparisons with NaN are false), so ``lr: .nan`` would train a zoo of diverged members."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{where or 'config'}: {node} is not a finite number")
    children = (node.items() if isinstance(node, dict)
                else enumerate(node) if isinstance(node, list) else ())
    for key, child in children:
        _check_finite(child, f"{where}.{key}" if where else str(key))


def _check_grid_size(where: str, zoo: dict[str, Any], max_cells: int) -> None:
    """A grid past ``max_cells`` is refused before its cells are listed (10^6 cells made
    ``snakemake -n`` grow past 10 GB); the limit is a config key, to be raised on purpose."""
    n = len(zoo["temperature"]["values"]) * len(zoo["load"]["values"])
    if n > max_cells:
        raise ConfigError(f"{where}: {n:,} cells (temperature × load values) exceed max_cells "
                          f"= {max_cells:,}; raise max_cells if the grid is meant to be that big")

def _fill_derived_defaults(zoo: dict[str, Any]) -> None:
    """Defaults that depend on other keys, filled after the schema's: ``train.keep_epochs``
    defaults to ``[0, epochs]`` (the initialisation and the end of training, whatever
    ``epochs`` is), so a config that only shortens training is not rejected for a key it never
    wrote; the metric keys the config leaves out come from ``metrics.protocol``
    (:mod:`phasezoo.protocols`)."""
    train = zoo["train"]
    if train["keep_epochs"] is None:
        train["keep_epochs"] = [0, train["epochs"]]
    fill_protocol_defaults(zoo["metrics"], zoo["phases"])


def _check_zoo(name: str, zoo: dict[str, Any]) -> None:
    """Checks a JSON Schema cannot express, run before anything trains: each would otherwise
    surface only inside a job (or a later stage), or silently do nothing."""
    where = f"zoos.{name}"
    _check_axes(where, zoo)
    _check_dataset(where, zoo)
    _check_model(where, zoo["model"])
    _check_train(where, zoo)
    _check_metrics(where, zoo)
    transfer = zoo["studies"]["transfer_dataset"]
    if transfer is not None and transfer not in registered("dataset"):
        raise ConfigError(f"{where}.studies.transfer_dataset: {_unknown('dataset', transfer)}")


def _check_axes(where: str, zoo: dict[str, Any]) -> None:
    """Integer axes hold integers, data fractions are fractions, and no two values of an axis
    share a cell id (ids keep 6 significant digits; two cells in one folder would clobber)."""
    for axis in ("temperature", "load"):
        ax = zoo[axis]
        floats = [v for v in ax["values"] if not isinstance(v, int)]
        if ax["name"] in INTEGER_AXES and floats:  # 64.0 too: the schema's integers are ints
            raise ConfigError(f"{where}.{axis}.values: {ax['name']} values must be integers, "
                              f"got {floats[0]!r}")
        if ax["name"] == "data_fraction" and any(v > 1 for v in ax["values"]):
            raise ConfigError(f"{where}.{axis}.values: data fractions must be in (0, 1]")
        ids: dict[str, float] = {}
        for v in ax["values"]:
            part = _fmt(ax["name"], _coerce(ax["name"], v))
            if ids.setdefault(part, v) != v:
                raise ConfigError(f"{where}.{axis}.values: {ax['name']} values {ids[part]} and "
                                  f"{v} give the same cell id '{part}' (ids keep 6 significant "
                                  "digits); make them differ within 6 digits")
    datasets = registered("dataset")
    if zoo["load"]["name"] == "beta" and "beta" not in datasets.get(zoo["dataset"]["name"], ()):
        betas = sorted(d for d, options in datasets.items() if "beta" in options)
        raise ConfigError(f"{where}.load.name: beta is the convection coefficient of the "
                          f"{betas} dataset, not of '{zoo['dataset']['name']}'")


def _check_dataset(where: str, zoo: dict[str, Any]) -> None:
    """The dataset is registered, its options are its own, and image preparation or
    augmentation is only asked of images."""
    data = zoo["dataset"]
    dataset = data["name"]
    options = registered("dataset").get(dataset)
    if options is None:
        raise ConfigError(f"{where}.dataset.name: {_unknown('dataset', dataset)}")
    _check_options(f"{where}.dataset.options", data["options"], "dataset", dataset, options)
    if "source" in data["options"]:  # local files: under data_root only (phasezoo.sources)
        problem = source_problem(data["options"]["source"])
        if problem:
            raise ConfigError(f"{where}.dataset.options.source: {problem}")
    if not _images(zoo):
        for key in ("image_size", "channels"):
            if data[key] is not None:
                raise ConfigError(f"{where}.dataset.{key}: '{dataset}' inputs are not images "
                                  "(image_size and channels apply to image datasets only)")
        if any(zoo["train"]["augment"].values()):
            raise ConfigError(f"{where}.train.augment: image augmentation on '{dataset}', whose "
                              "inputs are not images")


def _task(zoo: dict[str, Any]) -> TaskKind | None:
    """The task kind of the zoo's dataset (None for a name without a record): what a config may
    ask of a dataset follows from it (:mod:`phasezoo.task_kinds`)."""
    facts = DATASET_FACTS.get(zoo["dataset"]["name"])
    return task_kind(facts.task) if facts else None


def _images(zoo: dict[str, Any]) -> bool:
    """Whether the zoo's dataset's inputs are images (image preparation, augmentation and
    input mixup apply)."""
    kind = _task(zoo)
    return kind is not None and kind.inputs == "images"


def _check_model(where: str, model: dict[str, Any]) -> None:
    """The architecture is registered, its options are its own, and ``model.depth`` is not set
    on an architecture that ignores it.

    A resolved config (defaults filled, as the Snakefile hands the CLI) carries the schema's
    default depth for every model, so only a depth other than the default is an error: writing
    the default itself cannot be told apart from it.
    """
    arch = model["name"]
    options = registered("model").get(arch)
    if options is None:
        raise ConfigError(f"{where}.model.name: {_unknown('model', arch)}")
    _check_options(f"{where}.model.options", model["options"], "model", arch, options)
    if arch not in DEPTH_MODELS and model["depth"] != _default_depth():
        hint = ("set model.options.depth instead" if "depth" in options
                else f"'{arch}' has no depth option")
        raise ConfigError(f"{where}.model.depth: only {sorted(DEPTH_MODELS)} take model.depth, "
                          f"'{arch}' would ignore it; {hint}")


def _check_train(where: str, zoo: dict[str, Any]) -> None:
    """Kept epochs and step milestones fall within training (a milestone at or after the last
    epoch would silently never lower the learning rate)."""
    train = zoo["train"]
    epochs = train["epochs"]
    late = [e for e in train["keep_epochs"] if e > epochs]
    if late:
        raise ConfigError(f"{where}.train.keep_epochs: {late} exceed train.epochs={epochs}")
    if train["schedule"] == "step" and not train["step_milestones"]:
        raise ConfigError(f"{where}.train.step_milestones: schedule 'step' needs milestones")
    never = [m for m in train["step_milestones"] if m >= epochs]
    if never:
        raise ConfigError(f"{where}.train.step_milestones: {never} never take effect with "
                          f"train.epochs={epochs} (a milestone m applies from epoch m + 1 on, "
                          f"so each must be < {epochs})")


def _check_metrics(where: str, zoo: dict[str, Any]) -> None:
    """Seed-pair settings that would leave the pairs and phases stages with nothing to compare,
    metric variants the task has no meaning for, and a profile grid without the model at its
    centre."""
    metrics, kept = zoo["metrics"], zoo["train"]["keep_epochs"]
    for key in ("max_pairs", "cka_max_pairs"):
        if metrics[key] == 0:
            raise ConfigError(f"{where}.metrics.{key}: 0 compares no seed pair; use -1 (all "
                              "pairs) or a number ≥ 1")
    if metrics["cka_data"] == "train-mixup" and not _images(zoo):
        raise ConfigError(f"{where}.metrics.cka_data: train-mixup mixes input images; "
                          f"'{zoo['dataset']['name']}' inputs are not images (use test)")
    kind = _task(zoo)
    if metrics["cka_output"] == "softmax" and kind is not None and not kind.categorical:
        raise ConfigError(f"{where}.metrics.cka_output: softmax of a PINN's one regression "
                          "output is constant; use logits (the raw output)")
    if metrics["topology_steps"] % 2 == 0:
        raise ConfigError(f"{where}.metrics.topology_steps: {metrics['topology_steps']} is even; "
                          "use an odd number, so the profile's grid holds the model itself at "
                          "its centre")
    epoch = metrics["landscape_epoch"]
    if epoch != -1 and epoch not in kept:
        raise ConfigError(f"{where}.metrics.landscape_epoch: epoch {epoch} is not kept; use -1 "
                          f"(the last kept epoch) or one of train.keep_epochs {sorted(kept)}")


def _check_options(key: str, options: dict[str, Any], kind: str, name: str,
                   valid: tuple[str, ...]) -> None:
    """Options must be keyword arguments of the registered function (the rule and wording of
    ``create_dataset`` / ``create_model``, prefixed with the key path)."""
    problem = unknown_options(kind, name, options, valid)
    if problem:
        raise ConfigError(f"{key}: {problem}")
    for option, default in option_defaults(kind, name).items():
        if option in options and not _same_kind(options[option], default):
            raise ConfigError(f"{key}.{option}: {options[option]!r} is not of type "
                              f"'{_kind(default)}' (its default is {default!r})")


def _kind(value: Any) -> str:
    """The JSON Schema type name of an option's default value."""
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), type(value).__name__)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether an option's value has its default's type, as the schema's types go: an integer
    option takes an int only (not 30.0 or true: ``seq_len: 30.0`` failed only inside the job),
    a float option any number, a string option a string. An option without a literal default
    (None) takes anything."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _check_model_size(where: str, zoo: dict[str, Any], max_params: int) -> None:
    """Every cell's population fits ``max_params``: its seeds × its model's parameters, counted
    from the config (:mod:`phasezoo.model_sizes`, no torch), before any job allocates them; a
    width of 10^7 passed validation and failed inside torch after 102 s. Models registered at
    run time, whose sizes are not known here, are not counted."""
    data, model, seeds = zoo["dataset"], zoo["model"], len(zoo["seeds"])
    io = data_io(data["name"], data["image_size"], data["channels"], data["options"])
    options = ({"depth": model["depth"]} if model["name"] in DEPTH_MODELS else {}) | model["options"]
    by_width = zoo["load"]["name"] == "width"
    for width in zoo["load"]["values"] if by_width else [model["width"]]:
        n = parameter_count(model["name"], int(width), *io, options)
        if n is not None and seeds * n > max_params:
            key = f"{where}.load.values" if by_width else f"{where}.model.width"
            raise ConfigError(f"{key}: width {width} makes {model['name']} models of {n:,} "
                              f"parameters, {seeds} seeds × {n:,} = {seeds * n:,} in one train "
                              f"job, past max_params = {max_params:,}; raise max_params if the "
                              "cell is meant to be that big")


@functools.cache
def _default_depth() -> int:
    """The schema's ``model.depth`` default, filled in for every model."""
    return schema()["$defs"]["zoo"]["properties"]["model"]["properties"]["depth"]["default"]


def _unknown(kind: str, name: str) -> str:
    return f"unknown {kind} '{name}'; registered {kind}s: {sorted(registered(kind))}"


def _fmt(name: str, value: float) -> str:
    """One axis's part of a cell id, e.g. ``width-8``. The format (``:g``, 6 significant digits)
    names existing result folders, so it stays; ``_check_axes`` rejects values it would merge."""
    return f"{name}-{value:g}"


def _coerce(axis_name: str, value: float) -> float | int:
    return int(value) if axis_name in INTEGER_AXES else float(value)


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "config"
    if error.validator == "additionalProperties":
        return f"{key}: {error.message} (unknown key)"
    if error.validator == "pattern" and "description" in error.schema:
        return f"{key}: {error.instance!r} is not allowed ({error.schema['description']})"
    if error.validator == "maxItems":  # not jsonschema's message: it quotes the whole list
        return (f"{key}: {len(error.instance)} items, more than the maximum of "
                f"{error.validator_value}")
    if error.validator == "minItems" and error.validator_value > 1:
        return f"{key}: {error.message} (at least {error.validator_value} needed)"
    return f"{key}: {error.message}"


def _set_defaults(validator: Any, properties: dict, instance: Any, schema_: dict) -> Iterator:
    """JSON Schema ``properties`` keyword that first fills missing keys with their defaults."""
    if isinstance(instance, dict):
        for prop, sub in properties.items():
            if "default" in sub and prop not in instance:
                instance[prop] = copy.deepcopy(sub["default"])
    yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema_)


def _is_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema ``integer``, strictly: an int, not a bool and not an integral float.

    Why: the 2020-12 draft counts ``30.0`` as an integer, and YAML reads ``30.0`` as a float, so
    ``epochs: 30.0`` validated and then failed in ``range()`` inside a training job (or
    ``benchmark.seeds: 1.0`` at the end of the DAG). One type checker covers every integer key
    of the schema, present and future."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_DefaultFillingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"properties": _set_defaults},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))
