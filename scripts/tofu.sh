#!/usr/bin/env bash
# Prints the path of OpenTofu's `tofu` (pinned version), building it with Go from the Go module proxy
# into ~/.cache/verdict/tofu-<version>/ on first use. Used by `verdict plan-risk` (when it is given a
# binary plan), its tests and the infrastructure workflow's local equivalent.
#
# Why not `go install github.com/opentofu/opentofu/cmd/tofu@<version>`: OpenTofu's go.mod has a
# `replace` directive (for hashicorp/hcl), and `go install pkg@version` refuses modules with one. So
# the module is downloaded (`go mod download -json`), copied to a writable directory and built there
# with its own go.mod, which is what OpenTofu's release build does (`go build ./cmd/tofu`).
set -euo pipefail
version="v1.12.6"
module="github.com/opentofu/opentofu"
dir="${VERDICT_CACHE:-$HOME/.cache/verdict}/tofu-${version}"
bin="$dir/tofu"
if [[ ! -x "$bin" ]]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "tofu.sh: go not found; install Go >= 1.26.6 (OpenTofu ${version} is built from source with Go)" >&2
    exit 1
  fi
  started=$(date +%s)
  echo "tofu.sh: building OpenTofu ${version} from the Go module proxy (once; about 5-15 minutes on 2 cores, cached in ${dir})" >&2
  mkdir -p "$dir"
  # The module's go directive asks for Go 1.26.6: a local toolchain that new is used as it is; an older
  # one may fetch golang.org/toolchain from the module proxy (GOTOOLCHAIN=auto), unless the caller
  # pinned GOTOOLCHAIN itself.
  src="$(GOFLAGS=-mod=mod go mod download -json "${module}@${version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
    echo "tofu.sh: go mod download ${module}@${version} gave no module directory" >&2
    exit 1
  fi
  work="$(mktemp -d "${dir}/src.XXXXXX")"
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  cp -R "$src/." "$work/"
  chmod -R u+w "$work"
  echo "tofu.sh: compiling ./cmd/tofu (go build, $(go version | cut -d' ' -f3))" >&2
  (
    cd "$work"
    # The release build's flags: no VCS stamping (this is not a git checkout), the version from the tag.
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
      -o "$dir/tofu.tmp" ./cmd/tofu
  ) >&2
  mv "$dir/tofu.tmp" "$bin"
  echo "tofu.sh: built ${bin} in $(($(date +%s) - started)) s" >&2
fi
echo "$bin"
