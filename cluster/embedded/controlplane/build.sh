#!/usr/bin/env bash
# Builds kube-embedded into a content-addressed cache outside the repository and
# prints the binary's path on the last line of stdout (progress goes to stderr).
#
#   ${VERDICT_CACHE:-$HOME/.cache/verdict}/controlplane/<hash>/kube-embedded
#
# <hash> covers the Go sources, go.mod, go.sum, this script and the Go version,
# so an unchanged tree is a cache hit (no go invocation at all) and any change
# gives a fresh path. The Go build cache (GOCACHE, default ~/.cache/go-build) is
# left alone so that a rebuild after a small change is incremental.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${VERDICT_CACHE:-$HOME/.cache/verdict}/controlplane"

log() { printf 'build.sh: %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "go not found in PATH; install Go >= 1.26 (k8s.io/kubernetes v1.37 needs it)"
  exit 1
fi

goversion="$(go env GOVERSION)"
hash="$(
  cd "$here"
  {
    printf 'go=%s goos=%s goarch=%s\n' "$goversion" "$(go env GOOS)" "$(go env GOARCH)"
    # sorted list of inputs, each with its own content hash
    find . -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
      ! -name '*_test.go' -print | LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -c1-16
)"
out_dir="$cache_root/$hash"
bin="$out_dir/kube-embedded"

if [[ -x "$bin" ]]; then
  log "cache hit: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$out_dir"
tmp="$out_dir/.kube-embedded.$$"
trap 'rm -f "$tmp"' EXIT
log "building kube-embedded ($goversion) -> $bin"
log "a cold build compiles most of Kubernetes: about 7-13 min on 2 cores with an empty Go cache (measured: 7 min 13 s; 13 min 7 s on a busy machine); warm rebuilds take seconds to minutes"
start=$(date +%s)
(
  cd "$here"
  # Stamp the Kubernetes version the way upstream's hack/lib/version.sh does, so
  # /version and the compatibility (emulation) version say v1.x.y, not v0.0.0-master.
  kver="$(go list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)"
  kdate="$(go list -mod=readonly -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  major="${kver#v}"; major="${major%%.*}"
  minor="${kver#v*.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$kdate -X $pkg.gitCommit="
  done
  # -mod=readonly: go.sum must be complete; never rewrite go.mod/go.sum during a build.
  # -v, counted by go-build-progress.sh: a line every 30 s with the time and the packages compiled
  # so far, out of the packages in the build (go list -deps).
  total="$(go list -mod=readonly -deps . | wc -l)"
  "$here/../../../scripts/go-build-progress.sh" --of "$total" "build.sh: kube-embedded" -- \
    nice -n "${BUILD_NICE:-10}" go build -v -mod=readonly -trimpath -ldflags="$ldflags" -o "$tmp" . >&2
)
mv -f "$tmp" "$bin"
log "built in $(( $(date +%s) - start ))s ($(du -h "$bin" | cut -f1))"
# Keep the 3 most recent builds (~130 MB each); a running binary survives its file's removal.
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' \
  -printf '%T@ %p\n' | sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
echo "$bin"
