rule publish:
    """The published zoo: HDF5 shards, dataset card and SHA256SUMS, verified after writing."""
    input:
        weights=cell_files("train.h5"),
        metrics=cell_files("metrics.parquet"),
        pairs=cell_files("pairs.parquet"),
        phases=rules.phases.output.table,
    output:
        zoo=directory(f"{ZOOS}/{{zoo}}"),
    log:
        "logs/{zoo}/publish.log",
    params:
        cfg=zoo_config("publish"),
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    message:
        "publish {wildcards.zoo}"
    shell:
        "phasezoo publish --config {params.cfg} --zoo {wildcards.zoo} > {log} 2>&1"
