# Config validation, targets and input functions shared by all rules.
import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from phasezoo.card import FORMAT_VERSION, MEASURE_VERSION
from phasezoo.config import load_config
from phasezoo.config_checks import ConfigError, read_config_file
from phasezoo.config_checks import schema as config_schema
from phasezoo.jobs import DEFAULT_GROUP_MINUTES, job_group, load_part, train_groups
from phasezoo.plots import HEATMAP_METRICS
from phasezoo.stages import JOB_CONFIG_STAGES, STAGES, flag_values

if not config.get("zoos"):
    # The profile sets replace-workflow-config, so --configfile replaces config/config.yaml;
    # --config KEY=VALUE alone then replaces it too, leaving no zoo.
    raise WorkflowError(
        "config error: no zoos configured. --config KEY=VALUE overrides need a --configfile, "
        "e.g. snakemake --configfile config/config.yaml --config device=cpu"
    )
try:
    for _file in workflow.configfiles:  # duplicate keys, which Snakemake's loader lets through
        read_config_file(_file)
    CFG = load_config(config)  # phasezoo's own check first: one line naming the bad key
except ConfigError as err:
    raise WorkflowError(f"config error: {err}")
validate(config, "../schemas/config.schema.yaml")

RESULTS = CFG.results_dir
MAX_PARAMS_DEFAULT = config_schema()["properties"]["max_params"]["default"]

# The rules' shell lines call `phasezoo`: the one installed beside the Python that runs this
# Snakemake is found even when its venv is not activated (before, every job exited 127). It is
# appended to PATH, so an activated venv's or a conda env's phasezoo comes first. (Snakemake
# formats the prefix: braces doubled.)
_SCRIPTS = shlex.quote(str(Path(sys.executable).parent)).replace("{", "{{").replace("}", "}}")
shell.prefix(f'set -euo pipefail; export PATH="$PATH":{_SCRIPTS}; ')

ZOOS = CFG.zoos_dir


wildcard_constraints:
    zoo="[a-z0-9][a-z0-9-]*",
    source="[a-z0-9][a-z0-9-]*",
    # Cell ids are axis names and numbers (phasezoo.config): shell-safe characters only, so a
    # wildcard needs no quoting in a rule's shell line (paths from the config are quoted).
    cell="[A-Za-z0-9_.+-]+",
    dataset="[a-z0-9][a-z0-9.-]*",


def job_config(stage, zoo_name, part):
    """The exact config one job of ``stage`` reads, as JSON: the zoo's sections that ``stage``
    declares (phasezoo.stages.STAGES), its axes cut to the job's own cells (``part``: a cell id, a
    learning-rate group, or ``zoo`` for a per-zoo job). The job_config rule writes it to the
    file the job's shell line names; the file changes, and its job reruns, only when this text
    does: changing a phase threshold re-runs the phases and publish jobs but never retrains."""
    zoo = CFG.zoo(zoo_name)
    # Only the keys the CLI reads: a workflow-level switch (transfer_benchmark) must not
    # change every job's config and so retrain every zoo.
    raw = {k: CFG.raw[k] for k in ("results_dir", "zoos_dir", "data_root", "device")}
    # A raised size limit travels with the job, which checks its cells against it again; the
    # default is left out, so the job configs of existing zoos (and so their jobs) stay as they are.
    if CFG.raw["max_params"] != MAX_PARAMS_DEFAULT:
        raw["max_params"] = CFG.raw["max_params"]
    section = zoo.as_dict(STAGES[stage].sections)
    cells = _job_cells(zoo_name, part)
    if cells:
        section = _own_axes(section, cells)
    raw["zoos"] = {zoo_name: section}
    return json.dumps(raw, sort_keys=True, indent=1)


def config_file(stage, part="{cell}", zoo="{zoo}"):
    """The path of a job's config file (an input of the job, written by rule job_config)."""
    return f"{RESULTS}/{zoo}/.config/{stage}-{part}.json"


def _job_cells(zoo_name, part):
    """The cells a job covers: a cell id, a learning-rate group (its load id), or ``zoo`` (a
    per-zoo job: none)."""
    zoo = CFG.zoo(zoo_name)
    if part == "zoo":
        return []
    if zoo.has_cell(part):  # a dict lookup: this runs once per job of the DAG
        return [zoo.cell_by_id(part)]
    ids = RATE_GROUPS.get(zoo_name, {}).get(part)  # built once, below
    if not ids:
        raise WorkflowError(f"zoo {zoo_name}: no cell or learning-rate group '{part}'")
    return [zoo.cell_by_id(c) for c in ids]


def _own_axes(section, cells):
    """The zoo's section with its axes cut to the values of ``cells``: a job's params then change
    only when its own cells do, so adding a width or a batch size to a zoo trains and measures
    the new cells without retraining the finished ones."""
    out = dict(section)
    for axis, part in (("temperature", 0), ("load", 1)):
        values = list(dict.fromkeys((c.temperature, c.load)[part][1] for c in cells))
        # log2 only tells plots and benchmarks how to space the axis: not a per-cell job's concern
        out[axis] = {k: v for k, v in section[axis].items() if k != "log2"} | {"values": values}
    return out


def _dataset_key(zoo):
    """One fetch per distinct (dataset, options): ``cifar10`` or ``text-<hash of options>``."""
    data = CFG.zoo(zoo).dataset
    if not data.options:
        return data.name
    blob = json.dumps(data.options, sort_keys=True).encode()
    return f"{data.name}-{hashlib.sha256(blob).hexdigest()[:10]}"


def fetched(zoo):
    """The record the zoo's fetch job writes (an input of its train jobs)."""
    return f"{RESULTS}/.fetched/{_dataset_key(zoo)}.json"


# {dataset key: a zoo that reads it}: zoos that share a dataset share its fetch job, so two of
# them never download the same files at the same time; its flags come from that zoo's config.
DATASET_ZOOS = {_dataset_key(z): z for z in CFG.zoos}


def stage_args(stage, zoo):
    """The stage's flags (phasezoo.stages) with the values of ``zoo``'s config, shell-quoted."""
    sections = CFG.zoo(zoo).as_dict(STAGES[stage].sections)
    return " ".join(f"{option} {shlex.quote(value)}"
                    for option, value in flag_values(stage, sections))


def fetch_args(wildcards):
    """The fetch CLI's arguments: the dataset, its options and the data root, and nothing else,
    so that the fetch job (and so every train job after it) reruns only when the data do."""
    return (f"{stage_args('fetch', DATASET_ZOOS[wildcards.dataset])} "
            f"--data-root {shlex.quote(str(CFG.data_root))}")


def cell_ids(zoo):
    return [c.id for c in CFG.zoo(zoo).cells()]


def cell_files(name):
    """Input function: one per-cell file (train.h5, metrics.parquet, ...) for every cell of a zoo."""
    def files(wildcards):
        return [f"{RESULTS}/{wildcards.zoo}/{c}/{name}" for c in cell_ids(wildcards.zoo)]
    return files


def stage_resource(stage, key, group=False):
    """Resource callable: the ``zoo`` wildcard's ``resources.<key>.<stage>`` (mem_mb, runtime in
    minutes); a job training a learning-rate ``group`` as one stack gets that many times both
    (upper bounds: the stack holds every cell's members and activations, and takes less time
    than the cells one after another)."""
    def value(wildcards):
        cells = len(group_cells(wildcards)) if group else 1
        return cells * getattr(CFG.zoo(wildcards.zoo).resources, key)[stage]
    return value


def zoo_gpus(wildcards):
    """One GPU for a GPU zoo's per-cell jobs (``resources.gpu``), none for a CPU zoo."""
    return 1 if CFG.zoo(wildcards.zoo).resources.gpu else 0


# Zoos whose train jobs each cover all learning rates of one load value (phasezoo.jobs):
# {zoo: {group id (the load half of a cell id, e.g. width-8): the group's cell ids}}.
RATE_GROUPS = {z: {load_part(g[0]): [c.id for c in g] for g in train_groups(CFG.zoo(z))}
               for z in CFG.zoos if len(train_groups(CFG.zoo(z))[0]) > 1}


def zoo_pattern(names):
    """Regex matching exactly the zoos ``names`` (never matches if there are none)."""
    return "|".join(re.escape(z) for z in names) or "(?!)"


def rate_group(wildcards):
    """The group a learning-rate cell trains in (its load id)."""
    return CFG.zoo(wildcards.zoo).cell_by_id(wildcards.cell).load_id


def group_cells(wildcards):
    """The cell ids of a learning-rate group, each a folder of the group's output."""
    try:
        return RATE_GROUPS[wildcards.zoo][wildcards.group]
    except KeyError:
        raise WorkflowError(f"zoo {wildcards.zoo}: no learning-rate group '{wildcards.group}'")


def report_args(stage):
    """Input function: the report ``stage``'s flags from the ``zoo`` wildcard's config."""
    def args(wildcards):
        return stage_args(stage, wildcards.zoo)
    return args


def transfer_pairs():
    """Ordered pairs (train zoo, test zoo) of configured zoos with the same model: the
    cross-zoo benchmark runs in both directions."""
    zoos = CFG.zoos
    if not CFG.transfer_benchmark:
        return []
    return [(a, b) for a in zoos for b in zoos if a != b and zoos[a].model == zoos[b].model]


def transfer_sources(zoo):
    """The zoos whose models transfer to ``zoo`` (same model, transfer_benchmark on)."""
    return [a for a, b in transfer_pairs() if b == zoo]


def all_targets():
    """Every zoo and report, and every per-cell intermediate: a deleted (damaged) intermediate is
    then rebuilt, with everything after it, instead of left as a hole behind an up-to-date zoo."""
    cells = [f"{RESULTS}/{z}/{c}/{name}" for z in CFG.zoos for c in cell_ids(z)
             for name in ("train.h5", "metrics.parquet", "pairs.parquet")]
    return (cells + [f"{ZOOS}/.{z}.verified" for z in CFG.zoos]
            + [f"{RESULTS}/{z}/phases.parquet" for z in CFG.zoos]
            + [f"{RESULTS}/{z}/{out}.json" for z in CFG.zoos for out in ("benchmark", "studies", "diagnosis")]
            + [f"{RESULTS}/{b}/transfer-from-{a}/benchmark.json" for a, b in transfer_pairs()])


def _group_cap():
    """The wall-time cap (minutes) of a grouped cluster job: PHASEZOO_SLURM_MAX_GROUP_RUNTIME,
    else phasezoo.jobs.DEFAULT_GROUP_MINUTES."""
    raw = os.environ.get("PHASEZOO_SLURM_MAX_GROUP_RUNTIME", "").strip()
    if not raw:
        return DEFAULT_GROUP_MINUTES
    if not raw.isdigit() or int(raw) < 1:
        raise WorkflowError(f"PHASEZOO_SLURM_MAX_GROUP_RUNTIME: {raw!r} is not a whole number "
                            "of minutes >= 1")
    return int(raw)


MAX_GROUP_MINUTES = _group_cap()


def cell_group(wildcards):
    """The cluster job group of a zoo's train and measure jobs (phasezoo.jobs.job_group): as
    many cells' chains as fit in MAX_GROUP_MINUTES, or none."""
    return job_group(CFG.zoo(wildcards.zoo), MAX_GROUP_MINUTES)


# Scheduler arguments from the environment (docs/cluster.md), for the jobs that go to the
# cluster (train, measure). Present only when set: the Slurm plugin passes a resource that is
# there but empty (`-C ''`), and a profile expression giving None stalled its submissions.
SCHEDULER_ENV = {"qos": "PHASEZOO_SLURM_QOS", "constraint": "PHASEZOO_SLURM_CONSTRAINT",
                 "slurm_extra": "PHASEZOO_SLURM_EXTRA"}
SCHEDULER = {key: os.environ[env].strip() for key, env in SCHEDULER_ENV.items()
             if os.environ.get(env, "").strip()}


def _check_slurm_extra(extra):
    """Refuse sbatch flags the Slurm plugin sets itself, naming the variable: the plugin's own
    check raises inside its submission thread and the run then waits forever."""
    try:
        from snakemake_executor_plugin_slurm.validation import get_forbidden_slurm_options
    except ImportError:  # no Slurm plugin installed: the variable is not used
        return
    for pattern, what in get_forbidden_slurm_options().items():
        if re.search(pattern, extra):
            raise WorkflowError(f"PHASEZOO_SLURM_EXTRA: {extra!r} sets the {what}, which the "
                                "Slurm plugin sets itself; use the profile's resources instead "
                                "(README: On a cluster)")


_check_slurm_extra(SCHEDULER.get("slurm_extra", ""))


def gpu_model(wildcards):
    """PHASEZOO_SLURM_GPU_MODEL for a GPU zoo's jobs (--gpus=MODEL:1); '' (none) otherwise."""
    if not CFG.zoo(wildcards.zoo).resources.gpu:
        return ""
    return os.environ.get("PHASEZOO_SLURM_GPU_MODEL", "").strip()
