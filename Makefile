# The harness's entry points. Every target runs on Node 24 (scripts/node24.sh provides it when the
# machine's Node is older) and sets up what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN := $(shell scripts/node24.sh)
export PATH := $(NODE_BIN):$(PATH)
REPORTS ?= .reports

.PHONY: help setup deps test lint verify-local bench clean

help: ## list the targets
	@echo "verdict: deployment-verification harness for the license API"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo
	@echo "CLI: npx verdict --help"

setup: deps node_modules/.package-lock.json ## install Node 24, npm packages and Debian packages (Postgres, Redis)

deps:
	@scripts/setup-deps.sh

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

lint: setup ## type-check (tsc --noEmit)
	npx tsc --noEmit

test: setup lint ## run every test (vitest, real Postgres and Redis); JSON report in .reports/
	@mkdir -p $(REPORTS)
	npx vitest run --reporter=default --reporter=json --outputFile.json=$(REPORTS)/vitest.json

verify-local: setup ## verify a release on a local cluster (embedded without Docker, kind with it)
	node cli/verdict.ts verify-local

bench: setup ## run the benchmarks in bench/ (not part of the tests; BENCH=heartbeat|load-engine|embedded-network)
	@scripts/setup-deps.sh --bench
	@for b in $(or $(BENCH),heartbeat load-engine embedded-network); do echo "== bench/$$b.ts"; node bench/$$b.ts || exit 1; done

clean: ## remove build output and reports
	rm -rf dist $(REPORTS)
