rule train:
    """Train all seeds of one cell as a population (resumes from <out>.partial if killed)."""
    output:
        weights=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5",
    log:
        "logs/{zoo}/{cell}/train.log",
    params:
        cfg=zoo_config("train"),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=stage_resource("train", "mem_mb"),
        runtime=stage_resource("train", "runtime"),
        gpu=zoo_gpus,
    group:
        "cells-{zoo}"
    message:
        "train {wildcards.zoo} {wildcards.cell}"
    shell:
        "phasezoo train --config {params.cfg} --zoo {wildcards.zoo} --cell {wildcards.cell}"
        " --out {output.weights} --threads {threads} > {log} 2>&1"
