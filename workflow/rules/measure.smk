rule measure:
    """Landscape and HT-SR measurements of one trained cell, in one process (one torch start-up):
    per-checkpoint metrics (loss/accuracy, norms, Hessian, HT-SR) and seed-pair comparisons at the
    landscape epoch (mode connectivity, linear barrier, CKA). Both read the `metrics` section."""
    input:
        # A path, not rules.train.output: a learning-rate zoo's train.h5 comes from rule
        # rate_cell instead.
        weights=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5",
        seal=f"{RESULTS}/{{zoo}}/{{cell}}/train.h5.sha256",
        cfg=config_file("metrics"),
    output:
        metrics=f"{RESULTS}/{{zoo}}/{{cell}}/metrics.parquet",
        pairs=f"{RESULTS}/{{zoo}}/{{cell}}/pairs.parquet",
        seals=multiext(f"{RESULTS}/{{zoo}}/{{cell}}/", "metrics.parquet.sha256",
                       "pairs.parquet.sha256"),
    log:
        "logs/{zoo}/{cell}/measure.log",
    params:
        # New measured columns re-measure cells measured before them.
        version=MEASURE_VERSION,
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=stage_resource("measure", "mem_mb"),
        runtime=stage_resource("measure", "runtime"),
        gpu=zoo_gpus,
        gpu_model=gpu_model,
        **SCHEDULER,
    group:
        cell_group
    message:
        "measure {wildcards.zoo} {wildcards.cell}"
    shell:
        "phasezoo measure --config {input.cfg:q} --zoo {wildcards.zoo} --cell {wildcards.cell}"
        " --threads {threads} > {log:q} 2>&1"
