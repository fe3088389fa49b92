# train (embedded models), calibrate (calibration IDs + FP activation statistics once per model: calib.pt, read by
# every reference and search job of the model), reference (uniform PTQ qconfig, search=none), search (LPQ GA),
# reconstruct (quant.reconstruct != none: learned rounding of an evaluation point, rounding.pt), evaluate (applies a
# qconfig and the learned rounding; no calibration).


rule train:
    output:
        model=res("train/{model}/model.pt"),
        env=res("train/{model}/env.json"),
    log:
        logp("train", "{model}"),
    benchmark:
        bench("train", "{model}")
    params:
        cfg_digest=digest_for("train"),
        job=job_key("train"),
        overrides=overrides_for("train"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq train {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule train --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"


rule calibrate:
    input:
        checkpoint_input,
    output:
        calib=res("calib/{model}/calib.pt"),
        summary=res("calib/{model}/calib.json"),
        env=res("calib/{model}/env.json"),
    log:
        logp("calibrate", "{model}"),
    benchmark:
        bench("calibrate", "{model}")
    params:
        cfg_digest=digest_for("calibrate"),
        job=job_key("calibrate"),
        overrides=overrides_for("calibrate"),
    threads: 1
    resources:
        mem_mb=16000 if GPU else 4000,
        runtime=60,
        gpu=GPU,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq calibrate {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule calibrate --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"


rule reference:
    input:
        checkpoint_input,
        calib=res("calib/{model}/calib.pt"),
    output:
        qconfig=res("ref/{model}/{fmt}/{wa}/qconfig.json"),
        log_csv=res("ref/{model}/{fmt}/{wa}/search_log.csv"),
        summary=res("ref/{model}/{fmt}/{wa}/search.json"),
        env=res("ref/{model}/{fmt}/{wa}/env.json"),
    log:
        logp("reference", "{model}/{fmt}/{wa}"),
    benchmark:
        bench("reference", "{model}/{fmt}/{wa}")
    params:
        cfg_digest=digest_for("reference"),
        job=job_key("reference"),
        overrides=overrides_for("reference"),
    threads: 1
    resources:
        mem_mb=16000 if GPU else 4000,
        runtime=60,
        gpu=GPU,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq search {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule reference --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"


rule search:
    input:
        checkpoint_input,
        calib=res("calib/{model}/calib.pt"),
    output:
        qconfig=res("search/{model}/{fmt}/{wa}/s{seed}/qconfig.json"),
        log_csv=res("search/{model}/{fmt}/{wa}/s{seed}/search_log.csv"),
        summary=res("search/{model}/{fmt}/{wa}/s{seed}/search.json"),
        env=res("search/{model}/{fmt}/{wa}/s{seed}/env.json"),
    log:
        logp("search", "{model}/{fmt}/{wa}/s{seed}"),
    benchmark:
        bench("search", "{model}/{fmt}/{wa}/s{seed}")
    params:
        cfg_digest=digest_for("search"),
        job=job_key("search"),
        overrides=overrides_for("search"),
    threads: 1
    resources:
        mem_mb=search_mem_mb,
        runtime=search_runtime,
        gpu=GPU,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq search {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule search --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"


rule evaluate:
    input:
        eval_inputs,
    output:
        metrics=res("eval/{model}/{method}/{fmt}/{wa}/s{seed}/metrics.json"),
        qconfig=res("eval/{model}/{method}/{fmt}/{wa}/s{seed}/qconfig.json"),
        predictions=res("eval/{model}/{method}/{fmt}/{wa}/s{seed}/predictions.csv"),
        env=res("eval/{model}/{method}/{fmt}/{wa}/s{seed}/env.json"),
    log:
        logp("evaluate", "{model}/{method}/{fmt}/{wa}/s{seed}"),
    benchmark:
        bench("evaluate", "{model}/{method}/{fmt}/{wa}/s{seed}")
    params:
        cfg_digest=digest_for("evaluate"),
        job=job_key("evaluate"),
        overrides=overrides_for("evaluate"),
    threads: 1
    resources:
        mem_mb=16000 if GPU else 4000,
        runtime=120,
        gpu=GPU,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq evaluate {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule evaluate --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"


rule reconstruct:
    input:
        recon_inputs,
    output:
        rounding=res("recon/{model}/{method}/{fmt}/{wa}/s{seed}/rounding.pt"),
        summary=res("recon/{model}/{method}/{fmt}/{wa}/s{seed}/reconstruct.json"),
        env=res("recon/{model}/{method}/{fmt}/{wa}/s{seed}/env.json"),
    log:
        logp("reconstruct", "{model}/{method}/{fmt}/{wa}/s{seed}"),
    benchmark:
        bench("reconstruct", "{model}/{method}/{fmt}/{wa}/s{seed}")
    params:
        cfg_digest=digest_for("reconstruct"),
        job=job_key("reconstruct"),
        overrides=overrides_for("reconstruct"),
    threads: 1
    resources:
        mem_mb=16000 if GPU else 4000,
        runtime=240,
        gpu=GPU,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq reconstruct {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule reconstruct --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"
