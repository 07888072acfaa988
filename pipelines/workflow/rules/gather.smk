rule gather:
    input:
        summaries=expand(
            f"{OUT}/calls/{{group}}.{config['format']}.summary.tsv", group=sorted(GROUPS)
        ),
        metrics=expand(
            f"{OUT}/calls/{{group}}.{config['format']}.metrics.json", group=sorted(GROUPS)
        ),
    output:
        summary=f"{OUT}/run.summary.tsv",
        metrics=f"{OUT}/run.metrics.json",
    conda:
        "../envs/nanoseq.yaml"
    log:
        f"{OUT}/logs/gather.log",
    script:
        "../scripts/gather.py"
