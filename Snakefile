# phasezoo: config → train → metrics → pairs → phases → publish. See README.md.
configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/phases.smk"
include: "workflow/rules/publish.smk"


rule all:
    input:
        all_targets(),
    default_target: True
