#!/usr/bin/env bash
# Prints the path of actionlint (pinned version), building it with `go install` into
# ~/.cache/verdict on first use. Used by make setup and by the workflow tests.
set -euo pipefail
version="v1.7.12"
dir="${VERDICT_CACHE:-$HOME/.cache/verdict}/actionlint-${version}"
bin="$dir/actionlint"
if [[ ! -x "$bin" ]]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "actionlint.sh: go not found; install Go >= 1.26 (actionlint is built with go install)" >&2
    exit 1
  fi
  echo "actionlint.sh: building actionlint ${version} (go install)" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@${version}" >&2
fi
echo "$bin"
