rule publish:
    """The published zoo: HDF5 shards, dataset card and SHA256SUMS, verified after writing.

    The declared output is the verify record beside the zoo, not the zoo folder: Snakemake
    deletes a job's outputs before running it, and the last good zoo must stay in place until
    a new one is complete (phasezoo swaps it in atomically)."""
    input:
        weights=cell_files("train.h5"),
        metrics=cell_files("metrics.parquet"),
        pairs=cell_files("pairs.parquet"),
        phases=rules.phases.output.table,
        cfg=config_file("publish", "zoo"),
    output:
        record=f"{ZOOS}/.{{zoo}}.verified",
    log:
        "logs/{zoo}/publish.log",
    params:
        zoo=lambda wildcards: f"{ZOOS}/{wildcards.zoo}",
        # A new shard layout re-publishes zoos written in the old one.
        format=FORMAT_VERSION,
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    message:
        "publish {wildcards.zoo}"
    shell:
        "phasezoo publish --config {input.cfg:q} --zoo {wildcards.zoo} > {log:q} 2>&1"
        " && phasezoo verify {params.zoo:q} > {output.record:q}"


rule benchmark:
    """Phase-aware WSL benchmark of the published zoo, read back through datasets.load_dataset:
    baselines × tasks × cell-grouped splits → benchmark.json and benchmark.md."""
    input:
        zoo=rules.publish.output.record,
    output:
        json=f"{RESULTS}/{{zoo}}/benchmark.json",
        table=report(
            f"{RESULTS}/{{zoo}}/benchmark.md",
            caption="../report/table.rst",
            category="WSL benchmark",
            subcategory="{zoo}",
        ),
        plot=report(
            f"{RESULTS}/{{zoo}}/benchmark.png",
            caption="../report/benchmark.rst",
            category="WSL benchmark",
            subcategory="{zoo}",
        ),
    log:
        "logs/{zoo}/benchmark.log",
    params:
        args=report_args("benchmark"),
        out=lambda wildcards: f"{RESULTS}/{wildcards.zoo}",
        zoo=lambda wildcards: f"{ZOOS}/{wildcards.zoo}",
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    message:
        "benchmark {wildcards.zoo}"
    shell:
        "phasezoo benchmark {params.zoo:q} --out {params.out:q} {params.args} --stream"
        " --quiet > {log:q} 2>&1"


rule benchmark_transfer:
    """Zoo transfer: the WSL baselines fit on zoo `source` (same architecture) and tested on
    zoo `zoo`; one rule per ordered pair of configured zoos with the same model."""
    input:
        source=f"{ZOOS}/.{{source}}.verified",
        zoo=f"{ZOOS}/.{{zoo}}.verified",
    output:
        json=f"{RESULTS}/{{zoo}}/transfer-from-{{source}}/benchmark.json",
        table=f"{RESULTS}/{{zoo}}/transfer-from-{{source}}/benchmark.md",
        plot=f"{RESULTS}/{{zoo}}/transfer-from-{{source}}/benchmark.png",
    log:
        "logs/{zoo}/benchmark-transfer-from-{source}.log",
    params:
        args=report_args("benchmark"),
        out=lambda wildcards: f"{RESULTS}/{wildcards.zoo}/transfer-from-{wildcards.source}",
        zoo=lambda wildcards: f"{ZOOS}/{wildcards.zoo}",
        source=lambda wildcards: f"{ZOOS}/{wildcards.source}",
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    message:
        "benchmark {wildcards.zoo} (trained on {wildcards.source})"
    shell:
        "phasezoo benchmark {params.zoo:q} --train-zoo {params.source:q} --out {params.out:q}"
        " {params.args} --stream --quiet > {log:q} 2>&1"


rule diagnose:
    """Model diagnosis (the MD tree and its baselines) on the published zoo: is each cell's
    temperature too small or too large, is the load or the batch size its failure source;
    scored on the zoo's random and scale-transfer splits and, from every other configured zoo
    of the same model, as dataset transfer → diagnosis.json, .md and .png."""
    input:
        zoo=rules.publish.output.record,
        sources=lambda wildcards: [f"{ZOOS}/.{a}.verified" for a in transfer_sources(wildcards.zoo)],
    output:
        json=f"{RESULTS}/{{zoo}}/diagnosis.json",
        table=report(
            f"{RESULTS}/{{zoo}}/diagnosis.md",
            caption="../report/table.rst",
            category="Model diagnosis",
            subcategory="{zoo}",
        ),
        plot=report(
            f"{RESULTS}/{{zoo}}/diagnosis.png",
            caption="../report/diagnosis.rst",
            category="Model diagnosis",
            subcategory="{zoo}",
        ),
    log:
        "logs/{zoo}/diagnose.log",
    params:
        out=lambda wildcards: f"{RESULTS}/{wildcards.zoo}",
        zoo=lambda wildcards: f"{ZOOS}/{wildcards.zoo}",
        args=report_args("diagnose"),
        sources=lambda wildcards: " ".join(
            f"--train-zoo {shlex.quote(f'{ZOOS}/{a}')}" for a in transfer_sources(wildcards.zoo)
        ),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    message:
        "diagnose {wildcards.zoo}"
    shell:
        "phasezoo diagnose {params.zoo:q} --out {params.out:q} {params.args} {params.sources}"
        " > {log:q} 2>&1"


rule studies:
    """Downstream studies by phase on the published zoo: seed averaging (naive and weight-matched),
    magnitude pruning and (with studies.transfer_dataset) fine-tuning transfer per cell,
    summarised per phase with a Kruskal–Wallis test."""
    input:
        zoo=rules.publish.output.record,
    output:
        json=f"{RESULTS}/{{zoo}}/studies.json",
        table=report(
            f"{RESULTS}/{{zoo}}/studies.md",
            caption="../report/table.rst",
            category="Downstream studies",
            subcategory="{zoo}",
        ),
        plot=report(
            f"{RESULTS}/{{zoo}}/studies.png",
            caption="../report/studies.rst",
            category="Downstream studies",
            subcategory="{zoo}",
        ),
    log:
        "logs/{zoo}/studies.log",
    params:
        out=lambda wildcards: f"{RESULTS}/{wildcards.zoo}",
        zoo=lambda wildcards: f"{ZOOS}/{wildcards.zoo}",
        data_root=CFG.data_root,
        args=report_args("studies"),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    message:
        "studies {wildcards.zoo}"
    shell:
        "phasezoo studies {params.zoo:q} --out {params.out:q} --data-root {params.data_root:q} --quiet"
        " --allow-local-data"
        " {params.args} > {log:q} 2>&1"
