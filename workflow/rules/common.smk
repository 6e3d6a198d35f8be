# Config validation, targets and input functions shared by all rules.
import json
import shlex

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from phasezoo.config import ConfigError, load_config

if not config.get("zoos"):
    # The profile sets replace-workflow-config, so --configfile replaces config/config.yaml;
    # --config KEY=VALUE alone then replaces it too, leaving no zoo.
    raise WorkflowError(
        "config error: no zoos configured. --config KEY=VALUE overrides need a --configfile, "
        "e.g. snakemake --configfile config/config.yaml --config device=cpu"
    )
try:
    CFG = load_config(config)  # phasezoo's own check first: one line naming the bad key
except ConfigError as err:
    raise WorkflowError(f"config error: {err}")
validate(config, "../schemas/config.schema.yaml")

RESULTS = CFG.results_dir
ZOOS = CFG.zoos_dir


wildcard_constraints:
    zoo="[a-z0-9][a-z0-9-]*",
    cell="[^/]+",


def zoo_config(wildcards):
    """The validated config of one zoo, as a shell-quoted JSON argument for the CLI."""
    raw = {k: v for k, v in CFG.raw.items() if k != "zoos"}
    raw["zoos"] = {wildcards.zoo: CFG.raw["zoos"][wildcards.zoo]}
    return shlex.quote(json.dumps(raw, sort_keys=True))


def cell_ids(zoo):
    return [c.id for c in CFG.zoo(zoo).cells()]


def cell_files(name):
    """Input function: one per-cell file (train.h5, metrics.parquet, ...) for every cell of a zoo."""
    def files(wildcards):
        return [f"{RESULTS}/{wildcards.zoo}/{c}/{name}" for c in cell_ids(wildcards.zoo)]
    return files


def all_targets():
    return [f"{ZOOS}/{z}" for z in CFG.zoos] + [f"{RESULTS}/{z}/phases.parquet" for z in CFG.zoos]
