# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
MODEL := models/model.joblib

.PHONY: run test train bench bench-bigquery soak audit mutate mutate-report clean

$(BIN)/python:
	@echo "taxifare: creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# requirements.txt is what the deployed function needs; training (make run trains) adds requirements-train.txt.
$(VENV)/.installed: requirements.txt requirements-train.txt | $(BIN)/python
	@echo "taxifare: installing the training dependencies into $(VENV) (first run only: about 45 s with a warm pip cache, more when it downloads)"
	$(BIN)/pip install -q -r requirements-train.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements-train.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

$(MODEL): | $(VENV)/.installed
	@echo "taxifare: training $(MODEL) (first run only: about 20 s; 'make train' retrains)"
	$(BIN)/python -m taxifare train --out models

## run: install, train a model on first run, serve the function on $(PORT) (gunicorn)
run: $(VENV)/.installed $(MODEL)
	@echo "taxifare: serving $(MODEL) at http://127.0.0.1:$(PORT)/ (try http://127.0.0.1:$(PORT)/docs); Ctrl-C stops"
	$(BIN)/functions-framework --target predict --source main.py --port $(PORT)

## train: retrain models/ on the default data (or DATA=path_or_gs_uri)
train: $(VENV)/.installed
	$(BIN)/python -m taxifare train --out models $(if $(DATA),--data $(DATA))

## test: install everything the suite needs (Python and Debian packages) and run it
test: $(VENV)/.dev-installed
	scripts/system-packages.sh test
	$(BIN)/python -m pytest

## bench: the benchmarks behind the numbers in the README and SECURITY.md (installs Debian's wrk)
bench: $(VENV)/.dev-installed $(MODEL)
	scripts/system-packages.sh bench
	$(BIN)/python scripts/benchmark_model.py
	$(BIN)/python scripts/benchmark_serving.py
	$(BIN)/python scripts/benchmark_hostile.py
	$(BIN)/python scripts/dependency_sizes.py

## bench-bigquery: 1M synthetic rides in a local BigQuery -> trained model: read vs fit time, peak RSS, Storage Read vs REST (~25 min)
bench-bigquery: $(VENV)/.dev-installed
	$(BIN)/python scripts/benchmark_bigquery.py

## soak: 50,000 requests at 16 connections on loopback; errors, p50/p99 and memory over time
soak: $(VENV)/.dev-installed $(MODEL)
	$(BIN)/python -m pytest -m soak -s

## mutate: mutation testing of taxifare/model and taxifare/serving (mutmut; slow, never part of `make test`)
# Results accumulate in mutants/: a second run tests only new or changed code (delete mutants/ to start over).
# Three steps. mutmut makes mutants/ and maps tests to functions: it has no step that only prepares, so it is
# given one quick mutant to test. scripts/mutation_prepass.py settles most mutants fast. mutmut tests the rest.
MUTATION_CACHE := $(CURDIR)/.cache/test-model
SHARED_DATA := $(or $(TAXIFARE_DATA_DIR),$(abspath $(CURDIR)/../shared/data))
MUTATE_ENV := TAXIFARE_TEST_MODEL_CACHE=$(MUTATION_CACHE) TAXIFARE_DATA_DIR=$(SHARED_DATA) nice -n 19
PREPARING_MUTANT := taxifare.serving.memory.x_pin_mmap_threshold__mutmut_1
mutate: $(VENV)/.dev-installed
	$(MUTATE_ENV) $(BIN)/mutmut run $(PREPARING_MUTANT)
	$(MUTATE_ENV) $(BIN)/python scripts/mutation_prepass.py
	$(MUTATE_ENV) $(BIN)/mutmut run
	$(BIN)/python scripts/mutation_report.py

## mutate-report: the per-module scores and the surviving mutants of the last `make mutate`
mutate-report:
	$(BIN)/python scripts/mutation_report.py

## audit: known vulnerabilities in the deployed dependencies (asks PyPI's advisory data), from its own venv
audit:
	$(PYTHON) -m venv .venv-audit
	.venv-audit/bin/pip install -q pip-audit
	.venv-audit/bin/pip-audit -r requirements.txt

clean:
	rm -rf $(VENV) .venv-audit models .pytest_cache mutants .cache
