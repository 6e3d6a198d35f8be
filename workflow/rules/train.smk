rule train:
    """Train all seeds of one cell as a population (resumes from <out>.partial if killed)."""
    input:
        data=lambda wildcards: fetched(wildcards.zoo),
        cfg=config_file("train"),
    output:
        weights=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5",
        # Its integrity seal (phasezoo.integrity): a missing seal reruns the job, too.
        seal=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5.sha256",
    log:
        "logs/{zoo}/{cell}/train.log",
    wildcard_constraints:
        zoo=per_cell_zoos(),
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
        "phasezoo train --config {input.cfg:q} --zoo {wildcards.zoo} --cell {wildcards.cell}"
        " --out {output.weights:q} --threads {threads} > {log:q} 2>&1"


# A zoo with the learning rate as temperature: one job trains all rates of one load value
# ({group}, e.g. width-8) as one stacked population and writes each cell's train.h5
# (phasezoo.jobs.train_groups). One rule per such zoo, because its outputs list its rates.
for _zoo, _rates in LR_GROUPED.items():

    rule:
        name:
            f"train_rates_{_zoo.replace('-', '_')}"
        input:
            data=fetched(_zoo),
            cfg=config_file("train", "{group}", _zoo),
        output:
            weights=[f"{RESULTS}/{_zoo}/{rate}_{{group}}/train.h5" for rate in _rates],
            seals=[f"{RESULTS}/{_zoo}/{rate}_{{group}}/train.h5.sha256" for rate in _rates],
        log:
            f"logs/{_zoo}/{{group}}/train-rates.log",
        wildcard_constraints:
            group="[A-Za-z0-9_.+-]+",
        params:
            zoo=_zoo,
            cells=lambda wildcards, rates=_rates: " ".join(
                shlex.quote(f"{r}_{wildcards.group}") for r in rates),
        conda:
            "../../envs/phasezoo.yaml"
        threads: 1
        resources:
            mem_mb=stage_resource("train", "mem_mb", _zoo, cells=len(_rates)),
            runtime=stage_resource("train", "runtime", _zoo, cells=len(_rates)),
            gpu=lambda wildcards, zoo=_zoo: zoo_gpus(wildcards, zoo),
        group:
            f"cells-{_zoo}"
        message:
            f"train {_zoo} {{wildcards.group}}: {len(_rates)} learning rates as one population"
        shell:
            "phasezoo train --config {input.cfg:q} --zoo {params.zoo} --cell {params.cells}"
            " --out {output.weights:q} --threads {threads} > {log:q} 2>&1"
