rule phases:
    """Per-cell aggregates, phase labels and heat maps of one zoo."""
    input:
        metrics=cell_files("metrics.parquet"),
        pairs=cell_files("pairs.parquet"),
        cfg=config_file("phases", "zoo"),
    output:
        table=f"{RESULTS}/{{zoo}}/phases.parquet",
        seal=f"{RESULTS}/{{zoo}}/phases.parquet.sha256",
        diagram=report(
            f"{RESULTS}/{{zoo}}/plots/phase_diagram.png",
            caption="../report/phase_diagram.rst",
            category="Phase diagrams",
            subcategory="{zoo}",
        ),
        heatmaps=report(
            expand(f"{RESULTS}/{{{{zoo}}}}/plots/{{metric}}.png", metric=HEATMAP_METRICS),
            caption="../report/heatmap.rst",
            category="Grid heat maps",
            subcategory="{zoo}",
        ),
        profiles=report(
            f"{RESULTS}/{{zoo}}/plots/landscape_profiles.png",
            caption="../report/landscape_profiles.rst",
            category="Landscape profiles",
            subcategory="{zoo}",
        ),
    log:
        "logs/{zoo}/phases.log",
    conda:
        "../../envs/phasezoo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    message:
        "phases {wildcards.zoo}"
    shell:
        "phasezoo phases --config {input.cfg:q} --zoo {wildcards.zoo} > {log:q} 2>&1"
