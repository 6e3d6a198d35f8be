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
        zoo=zoo_pattern(z for z in CFG.zoos if z not in RATE_GROUPS),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=stage_resource("train", "mem_mb"),
        runtime=stage_resource("train", "runtime"),
        gpu=zoo_gpus,
        gpu_model=gpu_model,
        **SCHEDULER,
    group:
        cell_group
    message:
        "train {wildcards.zoo} {wildcards.cell}"
    shell:
        "phasezoo train --config {input.cfg:q} --zoo {wildcards.zoo} --cell {wildcards.cell}"
        " --out {output.weights:q} --threads {threads} > {log:q} 2>&1"


rule train_rates:
    """A zoo with the learning rate as temperature: all rates of one load value ({group}, e.g.
    width-8) train as one stacked population (phasezoo.jobs.train_groups), into one folder with
    a <cell>/train.h5 per rate; the group's partial state lies outside it, so a killed job
    resumes."""
    input:
        data=lambda wildcards: fetched(wildcards.zoo),
        cfg=config_file("train", "{group}"),
    output:
        cells=directory(f"{RESULTS}/{{zoo}}/.rates/{{group}}"),
    log:
        "logs/{zoo}/{group}/train-rates.log",
    wildcard_constraints:
        zoo=zoo_pattern(RATE_GROUPS),
        group="[A-Za-z0-9_.+-]+",
    params:
        cells=lambda wildcards: " ".join(group_cells(wildcards)),
        outs=lambda wildcards, output: [f"{output.cells}/{c}/train.h5"
                                        for c in group_cells(wildcards)],
        partial=lambda wildcards: f"{RESULTS}/{wildcards.zoo}/.train-rates-{wildcards.group}.partial",
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=stage_resource("train", "mem_mb", group=True),
        runtime=stage_resource("train", "runtime", group=True),
        gpu=zoo_gpus,
        gpu_model=gpu_model,
        **SCHEDULER,
    group:
        cell_group
    message:
        "train {wildcards.zoo} {wildcards.group}: all learning rates as one population"
    shell:
        "phasezoo train --config {input.cfg:q} --zoo {wildcards.zoo} --cell {params.cells}"
        " --out {params.outs:q} --partial {params.partial:q} --threads {threads} > {log:q} 2>&1"


rule rate_cell:
    """A learning-rate cell's train.h5 and seal: hard links to its files in its group's folder
    (no copy; the links keep the weights if the folder is deleted)."""
    input:
        lambda wildcards: f"{RESULTS}/{wildcards.zoo}/.rates/{rate_group(wildcards)}",
    output:
        weights=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5",
        seal=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5.sha256",
    log:
        "logs/rate_cell/{zoo}/{cell}.log",
    wildcard_constraints:
        zoo=zoo_pattern(RATE_GROUPS),
    localrule: True
    conda:
        "../../envs/phasezoo.yaml"
    message:
        "link {wildcards.zoo} {wildcards.cell} from its learning-rate group"
    shell:
        "exec 2> {log:q}; ln -f {input:q}/{wildcards.cell}/train.h5 {output.weights:q}"
        " && ln -f {input:q}/{wildcards.cell}/train.h5.sha256 {output.seal:q}"
