# LPQ / LPA reproduction workflow (PIPELINE §3). Hydra `conf/` is the configuration:
#   snakemake --cores 8 all                                   # experiment=paper (needs local weights/images)
#   snakemake --cores 2 all --config experiment=demo          # offline demo (make demo)
#   snakemake ... --config experiment=demo 'overrides=["experiment.budgets=[w4a4]"]'
include: "workflow/rules/common.smk"
include: "workflow/rules/quant.smk"
include: "workflow/rules/hw.smk"
include: "workflow/rules/outputs.smk"
include: "workflow/rules/tracking.smk"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    **GRID.wildcard_constraints(),


localrules:
    all,
    tables,
    figures,
    mlflow_ingest,


rule all:
    default_target: True
    input:
        all_targets(),
