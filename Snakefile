# phasezoo: config → fetch → train → measure → phases → publish → benchmark, studies. See README.md.
from snakemake.utils import min_version

# the version pyproject pins (the workflow catalog asks for one): an older Snakemake stops here
min_version("9.27")

configfile: "config/config.yaml"
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Under a cluster executor the per-zoo steps (reading every cell's small tables, plotting,
# writing the zoo) run on the submitting host; the per-cell train and measure jobs go to the
# cluster, grouped by the profile's group-components.
localrules:
    all,
    job_config,
    fetch,
    phases,
    publish,


include: "workflow/rules/job_config.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/phases.smk"
include: "workflow/rules/publish.smk"


rule all:
    input:
        all_targets(),
    default_target: True
