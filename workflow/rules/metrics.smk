rule metrics:
    """Per-checkpoint metrics of one cell: loss/accuracy, norms (one row per model × kept epoch)."""
    input:
        weights=rules.train.output.weights,
    output:
        table=f"{RESULTS}/{{zoo}}/{{cell}}/metrics.parquet",
    log:
        "logs/{zoo}/{cell}/metrics.log",
    params:
        cfg=zoo_config("metrics"),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    message:
        "metrics {wildcards.zoo} {wildcards.cell}"
    shell:
        "phasezoo metrics --config {params.cfg} --zoo {wildcards.zoo} --cell {wildcards.cell}"
        " --threads {threads} > {log} 2>&1"
