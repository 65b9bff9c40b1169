# Model Safety Ops. Two commands do everything on a fresh machine (as root):
#   make demo   set-up, lab-up, then the main job against the lab
#   make test   set-up, lint, every test (unit, real redis-server, real lab hosts)
SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
LAB_HOSTS ?= 1
PYTEST_ARGS ?=
REDIS_URL ?= redis://127.0.0.1:6379/0
GATE_ARGS ?=
DATASET_ARGS ?=
LABCTL := PYTHONPATH=$(CURDIR)/lab $(BIN)/python -m labctl
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: help setup packages lint unit test lab-up lab-down lab-status lab-ssh demo bench clean lock \
	bench-fleet bench-monitor quality-gate scoreboard build-patchtst-dataset collection

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: packages $(STAMP) ## install everything (Debian packages, .venv); quick when nothing changed

packages:
	@scripts/ensure-debian-packages

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) is required" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	@touch $@

# The newest versions within pyproject.toml's ranges, resolved in a scratch venv; the header
# (the file's first 3 lines) is kept. Then `make setup` installs them.
LOCK_VENV := .lock-venv
lock: ## re-resolve constraints.txt (the .venv's exact pins) within pyproject.toml's ranges
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet '.[dev]'
	{ head -n 3 constraints.txt; $(LOCK_VENV)/bin/python -m pip freeze --exclude model-safety-ops; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

lint: setup ## ruff, ansible-lint (production profile), module/filter docs, ansible-test sanity on the collection, task data flow, doc links
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python scripts/check_module_docs.py
	$(BIN)/python scripts/collection_sanity.py
	$(BIN)/python scripts/check_registered_vars.py
	$(BIN)/python scripts/check_doc_links.py

unit: setup ## the pure unit tests only (no root, no lab)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Three lanes (pytest-xdist, one test module per lane at a time), each with three lab hosts of
# its own; then, alone, the tests that need the whole lab (its size, lab-down, recovery).
TEST_LANES ?= 3

test: setup lint ## lint and every test; brings the lab up (root) and leaves it up
	$(BIN)/python -m pytest -n $(TEST_LANES) --dist loadfile -m "not lab_whole" --durations=25 $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m lab_whole $(PYTEST_ARGS)

lab-up: setup ## boot LAB_HOSTS lab hosts (default 1); builds the rootfs once; idempotent
	$(LABCTL) up --hosts $(LAB_HOSTS)

lab-down: setup ## power every lab host off
	$(LABCTL) down

lab-status: setup ## which lab hosts run
	$(LABCTL) status

lab-ssh: setup ## a shell on a lab host: make lab-ssh HOST=qlab1
	$(LABCTL) ssh $(or $(HOST),qlab1)

demo: setup lab-up ## set-up, lab-up, then the main job: gate and canary of patchtst on the lab
	$(LABCTL) reset
	mkdir -p reports
	$(BIN)/ansible-playbook playbooks/status.yml -e status_html=$(CURDIR)/reports/fleet.html
	$(BIN)/ansible-playbook playbooks/quality_gate.yml -e gate_model=patchtst -e gate_since_start=true -e gate_wait=90
	$(BIN)/ansible-playbook playbooks/canary.yml -e model=patchtst

collection: setup ## build the Ansible collection qsc.model_safety into dist/ (prints the tarball)
	$(BIN)/python scripts/build_collection.py

# bench/fleet.py resizes the lab (1 to 20 hosts): only `make bench-fleet` runs it.
bench: setup ## benchmarks with their baselines (print figures; not bench/fleet.py)
	@for bench in $(filter-out bench/fleet.py,$(wildcard bench/*.py)); do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

BENCH_ARGS ?=

bench-fleet: setup ## canary, rollback, monitor check on a lab of 1-20 hosts (~40 min; BENCH_ARGS="--sizes 1,3")
	$(BIN)/python bench/fleet.py $(BENCH_ARGS)

bench-monitor: setup ## the monitor's detection bench alone, no lab (~13 min; BENCH_ARGS="--quick")
	$(BIN)/python bench/monitor_detection.py $(BENCH_ARGS)

# The URL reaches the CLI through the environment, never the recipe's command line (a password
# in it would be echoed and visible in ps). make itself exits 2 for any non-zero exit of the
# CLI; its "Error N" line shows the CLI's code (2 FAIL, 3 COLLECTION).
quality-gate scoreboard: export MODEL_SAFETY_REDIS_URL = $(REDIS_URL)

quality-gate: setup ## the quality gate against REDIS_URL (GATE_ARGS="--model patchtst --mode collection")
	@$(BIN)/model-safety gate $(GATE_ARGS)

scoreboard: setup ## GO / WAIT / NO-GO per model into reports/safety/scoreboard_latest.md (REDIS_URL, GATE_ARGS)
	@$(BIN)/model-safety scoreboard $(GATE_ARGS)

clean: ## remove the venv and local artifacts (the lab itself: make lab-down)
	rm -rf $(VENV) .pytest_cache .ruff_cache reports

# DATASET_ARGS passes options through, e.g. DATASET_ARGS="--db PATH --symbols BTCUSDT --dry-run";
# make exits 2 whenever the command does (bad input or any error; nothing is written then).
build-patchtst-dataset: setup ## PatchTST windows (X, y) from OHLCV SQLite into data/ (DATASET_ARGS="--db PATH --dry-run")
	$(BIN)/model-safety build-patchtst-dataset $(DATASET_ARGS)
