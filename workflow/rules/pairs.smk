rule pairs:
    """Seed-pair comparisons of one cell at the landscape epoch: linear CKA, linear barrier."""
    input:
        weights=rules.train.output.weights,
    output:
        table=f"{RESULTS}/{{zoo}}/{{cell}}/pairs.parquet",
    log:
        "logs/{zoo}/{cell}/pairs.log",
    params:
        cfg=zoo_config("metrics"),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    message:
        "pairs {wildcards.zoo} {wildcards.cell}"
    shell:
        "phasezoo pairs --config {params.cfg} --zoo {wildcards.zoo} --cell {wildcards.cell}"
        " --threads {threads} > {log} 2>&1"
