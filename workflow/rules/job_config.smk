rule job_config:
    """The config file one job reads (`phasezoo <stage> --config <this file>`): the zoo's
    sections its stage reads, its axes cut to the job's own cells. Its text is this rule's
    param, so the file is rewritten — and the job that reads it rerun — only when what that job
    reads changes: adding a width trains and measures the new cells only."""
    output:
        f"{RESULTS}/{{zoo}}/.config/{{stage}}-{{part}}.json",
    log:
        "logs/job_config/{zoo}/{stage}-{part}.log",
    wildcard_constraints:
        stage="|".join(JOB_CONFIG_STAGES),
        part="[A-Za-z0-9_.+-]+",
    params:
        text=lambda wildcards: job_config(wildcards.stage, wildcards.zoo, wildcards.part),
    conda:
        "../../envs/phasezoo.yaml"
    message:
        "config of {wildcards.stage} {wildcards.zoo} {wildcards.part}"
    # A shell line, not a run: block, which Snakemake executes by starting another Snakemake
    # process per job (~1 s each); the text is shell-quoted, and a failed write leaves no file
    # (Snakemake removes a failed job's output).
    shell:
        "printf '%s\\n' {params.text:q} > {output:q} 2> {log:q}"
