#!/usr/bin/env bash
# Prints the path of kind (pinned version), building it with `go install` into ~/.cache/verdict on
# first use (about 25 s). Used by the kind target (cluster/kind/kind-cluster.ts).
set -euo pipefail
version="v0.33.0"
dir="${VERDICT_CACHE:-$HOME/.cache/verdict}/kind-${version}"
bin="$dir/kind"
if [[ ! -x "$bin" ]]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "kind.sh: go not found; install Go >= 1.26 (kind is built with go install)" >&2
    exit 1
  fi
  echo "kind.sh: building kind ${version} (go install sigs.k8s.io/kind@${version})" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS=-mod=mod go install "sigs.k8s.io/kind@${version}" >&2
fi
echo "$bin"
