# make test  -- create .venv if missing, install the project with its test extra, run the tests
# make demo  -- same set-up, then the offline `demo` workflow (results/demo: tables, figures, report, MLflow)
# make formats | demo-ptq | bench  -- format table, uniform-PTQ table of the README, fast-path benchmark
PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.lpq-installed

.PHONY: test demo demo-workflow canonical formats demo-ptq bench clean-venv

# the workflow runs the `lpq` commands of the venv (PIPELINE §3.1)
export PATH := $(abspath $(VENV))/bin:$(PATH)
export LPA_PROGRESS ?= lines
DEMO_CORES ?= 2

# the environment (PyPI's torch with its CUDA libraries) takes about 6.5 GB: say so before pip fails half-way
MIN_FREE_KB ?= 7000000

$(STAMP): pyproject.toml
	@free=$$(df -Pk . | awk 'NR==2 {print $$4}'); if [ -n "$$free" ] && [ "$$free" -lt $(MIN_FREE_KB) ] && [ -z "$$LPQ_SKIP_DISK_CHECK" ]; then \
	    echo "error: $$((free / 1024)) MiB free on the file system of $(CURDIR); the set-up of $(VENV) needs about 6.5 GB" \
	         "(free space, or set LPQ_SKIP_DISK_CHECK=1 to try anyway)" >&2; exit 1; fi
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[test,cluster]"
	@touch $(STAMP)

test: $(STAMP)
	$(VPY) -m pytest -q
	$(VPY) -m pytest -q -m isolated

# the demo experiment end to end, offline (conf/experiment/demo.yaml): tables, figures, MLflow runs, then the
# Snakemake report. A second `make demo` does nothing: Snakemake finds every output up to date and the report is
# rebuilt only when a table or figure is newer than it.
DEMO_REPORT := results/demo/report.html

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores $(DEMO_CORES) all --config experiment=demo
	@if [ ! -f $(DEMO_REPORT) ] || [ -n "$$(find results/demo/tables results/demo/figures -newer $(DEMO_REPORT) 2>/dev/null)" ]; then \
	    $(VENV)/bin/snakemake --cores 1 all --config experiment=demo --report $(DEMO_REPORT); \
	else echo "report up to date: $(DEMO_REPORT)"; fi
	@echo "demo results: results/demo/ (tables/*.md|csv|tex, figures/*.png, report.html); MLflow: results/mlflow.db"

demo-workflow: demo

# the small canonical outputs committed with the code and shown in the README (results/canonical/demo)
CANONICAL := results/canonical/demo
canonical:
	mkdir -p $(CANONICAL)
	cp results/demo/tables/summary.md results/demo/tables/hardware.md results/demo/figures/accuracy_vs_bits.png \
	    results/demo/figures/weights_digits_cnn_w4a4-mix_s0.png $(CANONICAL)/

# extras: the format table, the uniform-PTQ table of the README (results/demo-ptq) and the fast-path benchmark
formats: $(STAMP)
	$(VPY) -m lpq.formats "lp<8,1,3,0>" "lp<8,2,2,0.5>" "lp<4,1,2,0>" "lp<6,2,3,0,round=linear>" \
	    "int<8>" "fp8_e4m3" "fp8_e5m2" "fp4_e2m1" "posit<8,2>" "af<8,4>" "lns<8,3>" "flint<4>"

demo-ptq: $(STAMP)
	LPA_PROGRESS=lines $(VPY) -m lpq.pipeline.demo_ptq results/demo-ptq

bench: $(STAMP)
	$(VPY) benchmarks/bench_quantize.py

clean-venv:
	rm -rf $(VENV)
