# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environments and install the pinned dependencies on first use.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov pins its own dependency tree, so it lives in a venv of its own
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# gitlab-ci-local evaluates .gitlab-ci.yml's rules in the CI tests (Node.js >= 20; skipped without node)
GCL_DIR       := .ci-tools
GCL_STAMP     := $(GCL_DIR)/.installed
BENCH_VENV    := .venv-bench
BENCH_STAMP   := $(BENCH_VENV)/.installed

.PHONY: help lock browser ci demo test test-fast studio bench bench-dq bench-scale bench-transform bench-runtime bench-models lambda-zip clean-local

## Show the targets (default).
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-z-]*:/{if(doc){split($$0,t,":"); printf "  make %-14s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)
	@echo "  sm-local commands: .venv/bin/sm-local --help (after the first make demo / make test)"

# Every environment installs from a lock file of its whole dependency tree, so every machine gets the
# same versions: requirements.lock, tools/checkov.lock, bench/requirements.lock (`make lock` regenerates
# them from pyproject.toml, tools/checkov.in and bench/requirements.txt) and tools/gitlab-ci-local's
# package-lock.json.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==25.3" "setuptools==80.9.0"
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# $(call tool-venv,DIR,LOCK): a venv of its own holding exactly LOCK's tree (tools whose pins clash with ours)
define tool-venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet --upgrade "pip==25.3"
	$(1)/bin/pip install --quiet -r $(2)
	touch $(1)/.installed
endef

$(CHECKOV_STAMP): tools/checkov.lock
	$(call tool-venv,$(CHECKOV_VENV),tools/checkov.lock)

$(GCL_STAMP): tools/gitlab-ci-local/package-lock.json
	@if command -v npm >/dev/null; then \
		mkdir -p $(GCL_DIR) && cp tools/gitlab-ci-local/package.json tools/gitlab-ci-local/package-lock.json $(GCL_DIR)/ && \
		npm ci --prefix $(GCL_DIR) --no-audit --no-fund --silent && touch $(GCL_STAMP); \
	else echo "npm not found: the gitlab-ci-local tests will be skipped"; fi
	@command -v rsync >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null; } || \
		echo "rsync is missing (gitlab-ci-local runs jobs with it): install it"

# The offline CI's package mirror, as a company runner has one: the uv wheel for pip, and uv's cache holding
# requirements.lock and the project's build backend, so the jobs install exactly as in GitLab with no network.
UV_VERSION := $(shell sed -n 's/^  UV_VERSION: "\(.*\)"/\1/p' .gitlab-ci.yml)
CI_MIRROR_STAMP := $(GCL_DIR)/.mirror
$(CI_MIRROR_STAMP): requirements.lock pyproject.toml .gitlab-ci.yml $(STAMP)
	rm -rf $(GCL_DIR)/wheelhouse $(GCL_DIR)/mirror-venv $(GCL_DIR)/uv-tool
	$(BIN)/pip download --quiet --no-deps -d $(GCL_DIR)/wheelhouse "uv==$(UV_VERSION)"
	$(PYTHON) -m venv $(GCL_DIR)/uv-tool && $(GCL_DIR)/uv-tool/bin/pip install --quiet --no-index --find-links $(GCL_DIR)/wheelhouse "uv==$(UV_VERSION)"
	$(PYTHON) -m venv $(GCL_DIR)/mirror-venv
	UV_CACHE_DIR=$(GCL_DIR)/uv-cache $(GCL_DIR)/uv-tool/bin/uv pip install --quiet --python $(GCL_DIR)/mirror-venv/bin/python -r requirements.lock
	UV_CACHE_DIR=$(GCL_DIR)/uv-cache $(GCL_DIR)/uv-tool/bin/uv pip install --quiet --python $(GCL_DIR)/mirror-venv/bin/python --no-deps .
	rm -rf $(GCL_DIR)/mirror-venv build
	touch $(CI_MIRROR_STAMP)

$(BENCH_STAMP): bench/requirements.lock
	$(call tool-venv,$(BENCH_VENV),bench/requirements.lock)

TOOLS_VENV := .venv-tools
UV_COMPILE := $(TOOLS_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --no-header

## Regenerate the lock files after changing a pin (needs the registries).
lock:
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet "uv==0.13.8"
	$(UV_COMPILE) pyproject.toml --extra test -o requirements.lock
	$(UV_COMPILE) tools/checkov.in -o tools/checkov.lock
	$(UV_COMPILE) bench/requirements.txt -o bench/requirements.lock
	cd tools/gitlab-ci-local && npm install --package-lock-only --no-audit --no-fund --silent

## The offline demo: the whole MLOps loop on this machine, against an embedded moto.
demo: $(STAMP)
	$(BIN)/sm-local demo

## Run .gitlab-ci.yml offline as GitLab would: default-branch, trigger (approval), withdraw (the only version rejected), merge-request and destroy pipelines (CI_ARGS="--promote dev" for dev only).
ci: $(STAMP) $(GCL_STAMP) $(CI_MIRROR_STAMP)
	$(BIN)/python -m tools.gitlab_ci $(CI_ARGS)

## The whole test suite: the fast tier first (a failure stops there), then tests/component and tests/e2e on 2 workers, with checkov on the Terraform and the studio page in headless chromium (missing = failure).
# test-fast is the first prerequisite, so make runs it before installing checkov, gitlab-ci-local and
# the browser: a failing unit test stops the run (and the GitLab test job) within a minute.
test: test-fast $(CHECKOV_STAMP) $(GCL_STAMP) $(CI_MIRROR_STAMP) browser
	REQUIRE_CHECKOV=1 REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n 2 tests/component tests/e2e

## The fast tier (tests/unit: in-process, no runtime, no subprocess): feedback in under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# The studio test drives Debian's chromium through chromedriver (browsers downloaded by pip/npm do not run
# here); installed with apt-get when missing (as root), otherwise the test run fails and says why.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "chromium and chromedriver are missing: install Debian's chromium and chromium-driver (or your OS's equivalents)"; fi; \
	fi

## The local studio page (pipelines, executions, model registry with Approve/Reject, reports) on port 8642; WORKSPACE=demo-output/workspace opens the demo's.
studio: $(STAMP)
	$(BIN)/sm-local $(if $(WORKSPACE),--workspace $(WORKSPACE)) studio

## Every benchmark below.
bench: bench-dq bench-scale bench-transform bench-runtime

## Our data-quality engine (production pandas, .venv) against Evidently (.venv-bench): speed and detection.
bench-dq: $(STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/bench_data_quality.py --dq-python $(BIN)/python $(BENCH_DQ_ARGS)

## Streaming data quality at 10M and 30M rows (BENCH_SCALE_ARGS="--sizes 10000000 30000000 100000000" adds 100M).
bench-scale: $(STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/bench_scale.py --dq-python $(BIN)/python $(BENCH_SCALE_ARGS)

## Batch-transform rows/s per instance for each algorithm, with its test MSE; offline transform job scaling, 1 vs 2 instances.
bench-transform: $(STAMP)
	$(BIN)/python bench/bench_transform.py $(BENCH_TRANSFORM_ARGS)

## The demo's phases before and after the faster loop, side by side; local transform against raw predict.
bench-runtime: $(STAMP)
	$(BIN)/python bench/bench_runtime.py

## Default model vs linear regression vs a plain random forest, 5-fold CV (optional: DATA="a.csv b.csv" SCHEMA="a.json b.json", side by side; VARIANT="stack_folds=5 n_estimators=100"; SUITE=1 adds the reference data sets).
bench-models: $(STAMP)
	$(BIN)/python bench/bench_models.py $(foreach d,$(DATA),--data "$(d)") $(foreach s,$(SCHEMA),--schema "$(s)") \
		$(foreach v,$(VARIANT),--variant "$(v)") $(if $(SUITE),--suite bench/results/model-datasets)

## The Lambda deployment package.
lambda-zip: $(STAMP)
	$(BIN)/python tools/build_lambda.py

## Remove the offline state (.local-sagemaker/) and demo-output/.
clean-local:
	rm -rf .local-sagemaker demo-output
