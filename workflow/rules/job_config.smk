rule job_config:
    """The config file one job reads (`phasezoo <stage> --config <this file>`): the zoo's
    sections its stage reads, its axes cut to the job's own cells. Its text is this rule's
    param, so the file is rewritten — and the job that reads it rerun — only when what that job
    reads changes: adding a width trains and measures the new cells only."""
    output:
        f"{RESULTS}/{{zoo}}/.config/{{stage}}-{{part}}.json",
    wildcard_constraints:
        stage="|".join(STAGES),
        part="[A-Za-z0-9_.+-]+",
    params:
        text=lambda wildcards: job_config(wildcards.stage, wildcards.zoo, wildcards.part),
    message:
        "config of {wildcards.stage} {wildcards.zoo} {wildcards.part}"
    run:
        from phasezoo.atomic import write_atomic

        write_atomic(output[0], lambda tmp: tmp.write_text(params.text))
