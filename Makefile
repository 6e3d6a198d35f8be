# The README's two commands: `make demo` (default zoo end to end) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-page showcase deep grid unlock test test-fast test-slurm lint clean

# TORCH=cpu installs torch's CPU-only wheels (the pinned versions, from torch's CPU index)
# before the rest: a venv of ~1.5 GB instead of ~6.2 GB with the CUDA libraries.
TORCH ?= default
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if [ "$(TORCH)" = cpu ]; then $(BIN)/pip install --index-url $(TORCH_CPU_INDEX) \
	  $$($(BIN)/python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); \
	  print(*[r for r in d['project']['dependencies'] if r.split('==')[0] in ('torch', 'torchvision')])"); fi
	$(BIN)/pip install -e '.[test]'
	touch $@

# `phasezoo run` checks the config, removes a killed run's stale lock (never while a Snakemake
# runs here) and runs Snakemake, so after a kill or a power loss `make demo` again resumes:
# finished jobs are kept, training resumes from its last epoch.
DEMO := results/mnist-mlp
# $(call run_json,COMMAND,FILE): the wall time since $$start, the cores and the machine, as JSON
run_json = printf '{"seconds": %s, "cores": %s, "command": "$(1)", "machine": "%s"}\n' \
	  $$(( $$(date +%s) - start )) $$(nproc) "$$(uname -m), $$(nproc) CPU cores" > $(2)
demo: $(STAMP)
	start=$$(date +%s) && PATH=$(BIN):$$PATH $(BIN)/phasezoo run \
	  && $(call run_json,make demo,$(DEMO)/run.json)
	PATH=$(BIN):$$PATH $(BIN)/phasezoo verify zoos/mnist-mlp
	@echo "Outputs: zoos/mnist-mlp (the published zoo), results/mnist-mlp (phases.parquet,"
	@echo "plots/, benchmark.md, studies.md, diagnosis.md); snakemake --report report.html collects them."

# The default zoo's page docs/mnist-mlp.md from a finished `make demo` (run from empty results
# for its timing to mean the whole run).
demo-page: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/phasezoo page $(DEMO) --out docs/mnist-mlp.md --run $(DEMO)/run.json

# $(call zoo_page,CONFIG,RESULTS,ZOO,PAGE,COMMAND): CONFIG's DAG end to end, its wall time in
# RESULTS/run.json, the published ZOO verified, and PAGE written from the run's own outputs
# (phasezoo page). Run from empty results folders for the time to mean the whole run.
define zoo_page
start=$$(date +%s) && PATH=$(BIN):$$PATH $(BIN)/phasezoo run --configfile $(1) \
  && $(call run_json,$(5),$(2)/run.json)
PATH=$(BIN):$$PATH $(BIN)/phasezoo verify $(3)
PATH=$(BIN):$$PATH $(BIN)/phasezoo page $(2) --out $(4) --run $(2)/run.json
endef

# The showcase zoo (config/showcase.yaml: 520 MLPs, every phase) and its page docs/showcase.md.
showcase: $(STAMP)
	$(call zoo_page,config/showcase.yaml,results-showcase/showcase,zoos-showcase/showcase,docs/showcase.md,make showcase)

# The two study configs' zoos and pages: 4-hidden-layer MLPs (TempBalance has layers to
# balance; docs/mnist-mlp-deep.md) and a denser 7 × 6 grid for the diagnosis (docs/mnist-mlp-grid.md).
deep: $(STAMP)
	$(call zoo_page,config/deep.yaml,results-deep/mnist-mlp-deep,zoos-deep/mnist-mlp-deep,docs/mnist-mlp-deep.md,make deep)
grid: $(STAMP)
	$(call zoo_page,config/diagnosis.yaml,results-diagnosis/mnist-mlp-grid,zoos-diagnosis/mnist-mlp-grid,docs/mnist-mlp-grid.md,make grid)

unlock: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/python workflow/scripts/unlock.py

# ruff first (pyproject's [tool.ruff]: errors that are bugs, not style), then Snakemake's
# linter on the workflow (the catalog's rules: a log and an environment per rule, ...), then the suite
test: $(STAMP)
	$(BIN)/ruff check src tests workflow benchmarks examples
	PATH=$(BIN):$$PATH $(BIN)/phasezoo run --lint
	PATH=$(BIN):$$PATH $(BIN)/python -m pytest

test-fast: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/python -m pytest -m "not slow and not bigmem"

# A single-node Slurm on localhost (Debian packages, needs root), the tiny zoos through
# `phasezoo run --profile slurm`, checks of the jobs' GPU asks and of the published zoos.
test-slurm: $(STAMP)
	$(BIN)/pip install -q -e '.[test,slurm]'
	PATH=$(BIN):$$PATH bash workflow/slurm/test-slurm.sh

lint: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/phasezoo run --lint

clean:
	rm -rf results zoos logs .snakemake results-test zoos-test results-slurm zoos-slurm results-mini zoos-mini \
	  results-showcase zoos-showcase results-deep zoos-deep results-diagnosis zoos-diagnosis
