# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environments and install the pinned dependencies on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov pins its own dependency tree, so it lives in a venv of its own
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
BENCH_VENV    := .venv-bench
BENCH_STAMP   := $(BENCH_VENV)/.installed

.PHONY: demo test bench bench-dq bench-runtime bench-models lambda-zip clean-local

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==25.3" "setuptools==80.9.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade "pip==25.3"
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov==3.3.30"
	touch $(CHECKOV_STAMP)

$(BENCH_STAMP): bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade "pip==25.3"
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

## The offline demo: the whole MLOps loop on this machine, against an embedded moto.
demo: $(STAMP)
	$(BIN)/sm-local demo

## The test suite, including checkov on the Terraform (REQUIRE_CHECKOV makes a missing checkov a failure).
test: $(STAMP) $(CHECKOV_STAMP)
	REQUIRE_CHECKOV=1 $(BIN)/python -m pytest -n 2

bench: bench-dq bench-runtime

bench-dq: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/bench_data_quality.py

bench-runtime: $(STAMP)
	$(BIN)/python bench/bench_runtime.py

## Default model vs linear regression vs a plain random forest, 5-fold CV (DATA=file.csv SCHEMA=schema.json optional).
bench-models: $(STAMP)
	$(BIN)/python bench/bench_models.py $(if $(DATA),--data "$(DATA)") $(if $(SCHEMA),--schema "$(SCHEMA)")

lambda-zip: $(STAMP)
	$(BIN)/python tools/build_lambda.py

clean-local:
	rm -rf .local-sagemaker demo-output
