rule basecall:
    input:
        lambda wc: GROUPS[wc.group],
    output:
        calls=f"{OUT}/calls/{{group}}.{config['format']}",
        summary=f"{OUT}/calls/{{group}}.{config['format']}.summary.tsv",
        metrics=f"{OUT}/calls/{{group}}.{config['format']}.metrics.json",
    conda:
        "../envs/nanoseq.yaml"
    log:
        f"{OUT}/logs/basecall/{{group}}.log",
    params:
        model=config["model"],
        reference=f"--reference {config['reference']}" if config.get("reference") else "",
        options=config["basecall_options"],
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        # --resume: an interrupted job keeps the reads already in its .partial output
        "nanoseq basecall {input} --model {params.model} -o {output.calls} --resume "
        "--threads {threads} {params.reference} {params.options} 2> {log}"
