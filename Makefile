# carmfg: the everyday commands. Anything longer than a line lives in scripts/.
#   make run              demo on http://127.0.0.1:8000 (SQLite, Celery in-process, demo users)
#   make test             the whole suite, as CI runs it (installs what is missing)
#   make lint             ruff + mypy
#   make bench            benchmarks -> bench/results.json  (QUICK=1: smaller; PG=1: on PostgreSQL)
SHELL := /bin/bash
.DEFAULT_GOAL := help

truthy = $(filter 1 yes true,$(1))

.PHONY: help run test lint bench sync services-shell

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

lint: sync
	@bash scripts/lint.sh

bench: sync
	@$(if $(call truthy,$(PG)),bash scripts/with-services.sh) .venv/bin/python bench/run.py $(if $(call truthy,$(QUICK)),--quick)

# Internal: the locked environment with the dev group (what lint, test and bench use).
sync:
	@bash -c 'source scripts/lib.sh && uv_sync'

# Internal: a shell with throw-away PostgreSQL and Redis exported, for poking around.
services-shell: sync
	@bash scripts/with-services.sh bash
