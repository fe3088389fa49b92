# hwsim: LPA and baseline accelerators. The workload is traced inside `lpq hwsim` from the architecture
# (meta device, no weights), so there is no separate workload job (documented deviation from PIPELINE §3.2).


rule hwsim:
    input:
        hw_qconfig,
    output:
        summary=res("hw/{profile}/{model}/{design}/{wa}/s{seed}/summary.json"),
        layers=res("hw/{profile}/{model}/{design}/{wa}/s{seed}/layers.csv"),
        png=res("hw/{profile}/{model}/{design}/{wa}/s{seed}/comparison.png"),
        env=res("hw/{profile}/{model}/{design}/{wa}/s{seed}/env.json"),
    log:
        logp("hwsim", "{profile}/{model}/{design}/{wa}/s{seed}"),
    benchmark:
        bench("hwsim", "{profile}/{model}/{design}/{wa}/s{seed}")
    params:
        cfg_digest=digest_for("hwsim"),
        job=job_key("hwsim"),
        overrides=overrides_for("hwsim"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    conda:
        "../../environment.yml"
    shell:
        "start=$(date +%s); OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} lpq hwsim {params.overrides:q} > {log} 2>&1 && "
        "python -m lpq.pipeline.envrecord {output.env:q} --rule hwsim --job {params.job:q} "
        "--digest {params.cfg_digest} --start $start -- {params.overrides:q} >> {log} 2>&1"
