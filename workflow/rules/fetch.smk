rule fetch:
    """Download a dataset into data_root once, before the train jobs of every zoo that uses it
    (they would otherwise all download the same files at the same time); a local rule, so under
    Slurm it runs on the submitting host, which has the internet that compute nodes often lack."""
    output:
        record=f"{RESULTS}/.fetched/{{dataset}}.json",
    log:
        "logs/fetch/{dataset}.log",
    params:
        args=fetch_args,
    conda:
        "../../envs/phasezoo.yaml"
    message:
        "fetch {wildcards.dataset} into data_root"
    shell:
        "phasezoo fetch {params.args} --out {output.record:q} > {log:q} 2>&1"
