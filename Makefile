# The harness's entry points. Every target runs on Node 24 (scripts/node24.sh provides it when the
# machine's Node is older) and sets up what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Node 24 first on PATH for every target that runs Node. When scripts/node24.sh fails, make stops
# here, its error above: a PATH without Node 24 would only mislead later. The targets that run no
# Node here do not look for it: help and clean work without it, and fresh-check installs nothing on
# this machine (it sets Node up inside its own root).
NODE_FREE_GOALS := help clean controlplane tofu docker-deps fresh-check
ifneq ($(filter-out $(NODE_FREE_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
NODE_BIN := $(shell scripts/node24.sh)
ifneq ($(.SHELLSTATUS)$(if $(NODE_BIN),,:empty),0)
$(error scripts/node24.sh gave no Node 24 (its error is above); make $(MAKECMDGOALS) needs it)
endif
export PATH := $(NODE_BIN):$(PATH)
endif
REPORTS ?= .reports

.PHONY: help setup deps docker-deps controlplane tofu kind-node-image test test-nightly lint format verify-local bench clean fresh-check

help: ## list the targets
	@echo "verdict: deployment-verification harness for the license API"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo
	@echo "CLI: npx verdict --help"

setup: deps node_modules/.package-lock.json $(if $(KIND),kind-node-image) ## install Node 24, npm packages, Debian packages (Postgres, Redis, ...) and actionlint (KIND=1: and the kind node image)

deps:
	@scripts/setup-deps.sh
	@scripts/actionlint.sh >/dev/null

docker-deps: ## Debian's docker.io engine and debootstrap, for the container tests (root)
	@scripts/setup-deps.sh --docker

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

controlplane: ## build the embedded control plane (cached in ~/.cache/verdict; empty Go cache: about 7-13 min on 2 cores)
	@cluster/embedded/controlplane/build.sh >/dev/null

tofu: ## build OpenTofu for plan-risk and its tests (scripts/tofu.sh; cached in ~/.cache/verdict; cold about 10 min on 2 cores)
	@scripts/tofu.sh >/dev/null

# kind's node image, built from source without a registry (cluster/kind/node-image/build.sh): cached in
# ~/.cache/verdict/kind-node/<hash of the inputs>; a warm machine only imports it into the engine.
kind-node-image: docker-deps ## build the kind node image (Kubernetes v1.37.2 from source; root, Docker; cold about 10 min with a warm Go cache)
	@holder=$$$$; host=$$(node lib/docker/engine.ts up --hold $$holder) || exit 1; \
	trap 'node lib/docker/engine.ts release --hold '$$holder EXIT; \
	DOCKER_HOST=$$host cluster/kind/node-image/build.sh

lint: setup ## type-check (tsc), lint (oxlint with type-aware rules: floating and misused promises, unsorted numbers, unsafe any, ...) and check formatting (Prettier)
	npx tsc --noEmit
	npx oxlint --type-aware --deny-warnings .
	npx prettier --check --log-level warn .

format: setup ## format the code base with Prettier (print width 130) and apply oxlint's safe fixes
	npx prettier --write --log-level warn .
	npx oxlint --type-aware --fix .

# The control plane is built before the tests start, so that no test pays for (or races) a cold build.
# Four vitest runs, the first two side by side:
#   1. every suite but the end-to-end cluster suites, files in parallel (its output is kept in
#      .reports/vitest-1-suites.log and printed when it ends);
#   2. meanwhile, the calm cluster suites one file at a time: their gates judge behaviour, not the
#      load engine's lateness, so a busy machine slows them but cannot change their verdicts;
#   3. then the loaded cluster suites whose gates compare latency (rollouts: the new version's
#      against the old one's, on the embedded cluster, from load agents and on kind), one file at a
#      time, alone on the machine;
#   4. then the outage suites side by side, each on its own embedded network slot (rehearsals on 1,
#      dependency rehearsals on 2, the load agents' Job mechanics on 3): most of their time is
#      waiting through outages, and their load gates held side by side (engine lateness p99 at most
#      22 ms of the 50 allowed, measured; docs/testing.md, "Which suites run side by side").
# Each cluster suite brings up its own cluster; slots are in cluster/embedded/testing/lanes.ts.
# Running the latency-judging suites beside others was tried and measured (docs/testing.md, "Why the
# rollout suites run alone"): their verdicts broke.
# The container tests (all in run 1) share one Docker engine (lib/docker/engine.ts: our own dockerd
# under /var/lib/verdict/docker, no iptables, no IP forwarding, no bridge; reused when it runs
# already), held by this recipe's shell and released after runs 1 and 2 (or on any exit), and the
# registry-free base image is made before the tests start (scripts/docker-base.sh; cached in
# ~/.cache/verdict). When no engine can run, the container tests fail and say why.
# The kind end-to-end suite (cluster/kind/kind.cluster.test.ts) is in run 3: kind up on the node
# image built here, deploy, rollout-under-load, endpoint propagation, down.
CLUSTER_CALM := cluster/embedded/embedded-cluster.test.ts suites/suites.cluster.test.ts gate/gate.cluster.test.ts
CLUSTER_ALONE := experiments/experiments.cluster.test.ts lib/load/distributed/agents-rollout.cluster.test.ts cluster/kind/kind.cluster.test.ts
CLUSTER_SIDE_BY_SIDE := experiments/rehearsals.cluster.test.ts experiments/dependency-rehearsals.cluster.test.ts lib/load/distributed/agents.cluster.test.ts
CLUSTER_E2E := $(CLUSTER_CALM) $(CLUSTER_ALONE) $(CLUSTER_SIDE_BY_SIDE)
VITEST_REPORTS = --reporter=json --outputFile.json=$(REPORTS)/vitest-$(1).json --reporter=junit --outputFile.junit=$(REPORTS)/vitest-$(1).junit.xml
test: setup docker-deps lint controlplane tofu ## run every test (vitest, real Postgres, Redis, Docker engine and control plane); JSON reports in .reports/
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/vitest-*.json $(REPORTS)/vitest-*.junit.xml $(REPORTS)/vitest-*.log
	@rc=0; holder=$$$$; \
	if host=$$(node lib/docker/engine.ts up --hold $$holder); then \
	  trap 'node lib/docker/engine.ts release --hold '$$holder EXIT; \
	  DOCKER_HOST=$$host scripts/docker-base.sh >/dev/null || echo "make test: the local base image could not be built (the container tests will fail and say why)" >&2; \
	  DOCKER_HOST=$$host cluster/kind/node-image/build.sh >/dev/null || echo "make test: the kind node image could not be built (the kind suite will fail and say why)" >&2; \
	else echo "make test: no Docker engine (the container tests will fail and say why)" >&2; fi; \
	echo "make test: run 1 (the suites, in parallel) writes to $(REPORTS)/vitest-1-suites.log while run 2 (the calm cluster suites) runs"; \
	npx vitest run $(addprefix --exclude ,$(CLUSTER_E2E)) --reporter=default $(call VITEST_REPORTS,1-suites) >$(REPORTS)/vitest-1-suites.log 2>&1 & suites=$$!; \
	npx vitest run --no-file-parallelism $(CLUSTER_CALM) --reporter=default $(call VITEST_REPORTS,2-cluster-calm) || rc=1; \
	wait $$suites || rc=1; \
	echo "make test: run 1's output:"; cat $(REPORTS)/vitest-1-suites.log; \
	node lib/docker/engine.ts release --hold $$holder || rc=1; \
	npx vitest run --no-file-parallelism $(CLUSTER_ALONE) --reporter=default $(call VITEST_REPORTS,3-cluster-alone) || rc=1; \
	npx vitest run --maxWorkers=3 $(CLUSTER_SIDE_BY_SIDE) --reporter=default $(call VITEST_REPORTS,4-cluster-side-by-side) || rc=1; \
	exit $$rc

# The scheduled CI run: everything make test runs, plus the repeated statistical runs (test/nightly.ts).
test-nightly: ## make test plus the repeated statistical runs (five naive controls, kind's broken release, more propagation samples)
	@VERDICT_NIGHTLY=1 $(MAKE) --no-print-directory test

verify-local: setup controlplane ## roll v1 -> v2 out under load on the embedded cluster and print the verdict (root)
	node cli/verdict.ts verify-local

bench: setup ## run the benchmarks in bench/ (not part of the tests; BENCH=heartbeat|load-engine|embedded-network)
	@scripts/setup-deps.sh --bench
	@for b in $(or $(BENCH),heartbeat load-engine embedded-network); do echo "== bench/$$b.ts"; node bench/$$b.ts || exit 1; done

# A new machine's setup, for real: every install branch of scripts/setup-deps.sh, scripts/node24.sh
# and npm ci run from nothing in a clean Debian bookworm root; the host keeps nothing but debootstrap.
fresh-check: ## run setup from nothing in a clean Debian root (debootstrap; root; 7-10 min): setup-deps, node24.sh, npm ci
	@scripts/fresh-check.sh

clean: ## remove build output and reports
	rm -rf dist $(REPORTS)
