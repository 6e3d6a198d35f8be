rule fetch:
    """Download a zoo's dataset into data_root once, before any of its train jobs (they would
    otherwise all download the same files at the same time); a local rule, so under Slurm it
    runs on the submitting host, which has the internet that compute nodes often lack."""
    output:
        record=f"{RESULTS}/{{zoo}}/data.json",
    log:
        "logs/{zoo}/fetch.log",
    params:
        args=fetch_args,
    conda:
        "../../envs/phasezoo.yaml"
    message:
        "fetch {wildcards.zoo}: dataset into data_root"
    shell:
        "phasezoo fetch {params.args} --out {output.record} > {log} 2>&1"
