# mlflow_ingest: the single MLflow writer (PIPELINE §5.2); idempotent by the jobs' cfg_digest tags.


rule mlflow_ingest:
    input:
        tables=rules.tables.output,
        figures=rules.figures.output,
        histograms=histogram_targets(),
    output:
        res("mlflow_ingest.json"),
    log:
        logp("mlflow_ingest", "mlflow_ingest"),
    benchmark:
        bench("mlflow_ingest", "mlflow_ingest")
    params:
        cfg_digest=digest_for("mlflow_ingest"),
        results=results_dir(1),
        experiment=EXP,
    retries: 2
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../environment.yml"
    shell:
        "python -m lpq.pipeline.ingest {params.results:q} --experiment {params.experiment} "
        "--out {output:q} > {log} 2>&1"
