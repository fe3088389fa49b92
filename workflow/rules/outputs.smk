# tables (Markdown, CSV, LaTeX) and figures (PNG), built from the result files only (PIPELINE §3.8).


rule tables:
    input:
        evals=eval_targets(),
        searches=search_targets(),
        hw=hw_targets(),
    output:
        report(
            expand(res("tables/{name}.{ext}"), name=TABLE_NAMES, ext=["md", "csv", "tex"]),
            caption="../report/tables.rst",
            category="Tables",
        ),
        env_txt=res("tables/environment.txt"),
    log:
        logp("tables", "tables"),
    benchmark:
        bench("tables", "tables")
    params:
        cfg_digest=digest_for("tables"),
        results=results_dir(2),
        baseline=GRID.cfg.experiment.hw_baseline,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../environment.yml"
    shell:
        "python -m lpq.pipeline.tables {params.results:q} --hw-baseline {params.baseline} > {log} 2>&1"


rule figures:
    input:
        evals=eval_targets(),
        searches=search_targets(),
        hw=hw_targets(),
    output:
        report(
            expand(res("figures/{name}.png"), name=FIGURE_NAMES),
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        logp("figures", "figures"),
    benchmark:
        bench("figures", "figures")
    params:
        cfg_digest=digest_for("figures"),
        results=results_dir(2),
        baseline=GRID.cfg.experiment.hw_baseline,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../environment.yml"
    shell:
        "python -m lpq.pipeline.figures {params.results:q} --hw-baseline {params.baseline} > {log} 2>&1"


rule weight_histograms:
    input:
        checkpoint_input,
        qconfig=res("search/{model}/lp/{wa}/s{seed}/qconfig.json"),
    output:
        report(
            res("figures/weights_{model}_{wa}_s{seed}.png"),
            caption="../report/histograms.rst",
            category="Figures",
        ),
    log:
        logp("weight_histograms", "{model}/{wa}/s{seed}"),
    benchmark:
        bench("weight_histograms", "{model}/{wa}/s{seed}")
    params:
        cfg_digest=digest_for("histograms"),
        overrides=histogram_overrides,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} python -m lpq.pipeline.histograms {output:q} --qconfig {input.qconfig:q} "
        "-- {params.overrides:q} > {log} 2>&1"
