#!/usr/bin/env bash
# Builds the Kubernetes v1.37.2 node and control-plane binaries, etcd 3.7.0, CoreDNS, crictl and pause
# from source (the Go module proxy; pause.c from the k8s.io/kubernetes module), into
#   ${VERDICT_CACHE:-~/.cache/verdict}/kind-node/bin-<hash>/
# and prints that folder on the last line of stdout (progress on stderr).
#
# <hash> covers this script, kube/go.mod, kube/go.sum, kube/etcd/main.go and the Go version. The
# Kubernetes binaries are built in kube/ (a module that requires k8s.io/kubernetes v1.37.2 with the
# same versions as the embedded control plane, and the same cgo and -trimpath settings), so they
# share the Go build cache of cluster/embedded/controlplane: a warm cache builds them in minutes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${VERDICT_CACHE:-$HOME/.cache/verdict}/kind-node"
COREDNS_VERSION=v1.14.6
CRICTL_VERSION=v1.36.0
log() { printf 'kind-node-binaries: %s\n' "$*" >&2; }
command -v go >/dev/null || { log "go not found in PATH; install Go >= 1.26"; exit 1; }
command -v gcc >/dev/null || { log "gcc not found (pause.c and cgo need it): apt-get install gcc libc6-dev (scripts/setup-deps.sh installs both)"; exit 1; }
echo '#include <stdio.h>' | gcc -E -x c - >/dev/null 2>&1 ||
  { log "gcc finds no C library headers (pause.c and cgo need them): apt-get install libc6-dev (scripts/setup-deps.sh installs it)"; exit 1; }

hash="$(
  cd "$here"
  { go env GOVERSION GOOS GOARCH; echo "coredns $COREDNS_VERSION crictl $CRICTL_VERSION"; sha256sum build-binaries.sh kube/go.mod kube/go.sum kube/etcd/main.go; } | sha256sum | cut -c1-16
)"
out="$cache/bin-$hash"
names=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns crictl pause)
complete() { for n in "${names[@]}"; do [[ -x "$out/$n" ]] || return 1; done; }
if complete; then log "cache hit: $out"; echo "$out"; exit 0; fi

mkdir -p "$out"
tmp="$(mktemp -d "$cache/.bin-$hash.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
cd "$here/kube"
kver="$(go list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)"
kdate="$(go list -mod=readonly -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
major="${kver#v}"; major="${major%%.*}"
minor="${kver#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$kdate -X $pkg.gitCommit="
done
log "building Kubernetes $kver (kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy) and etcd -> $out"
log "with the embedded control plane's Go build cache warm this takes minutes; cold, 20-40 minutes on 2 cores"
for n in kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
  log "go build $n"
  nice -n "${BUILD_NICE:-10}" go build -mod=readonly -trimpath -ldflags="$ldflags" -o "$tmp/$n" "k8s.io/kubernetes/cmd/$n" >&2
done
log "go build etcd"
nice -n "${BUILD_NICE:-10}" go build -mod=readonly -trimpath -ldflags="-s -w" -o "$tmp/etcd" ./etcd >&2
# CoreDNS has its own module graph (no replace directives): go install, pinned.
log "go install github.com/coredns/coredns@$COREDNS_VERSION"
GOBIN="$tmp/gobin" CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n "${BUILD_NICE:-10}" go install -trimpath -ldflags="-s -w" "github.com/coredns/coredns@$COREDNS_VERSION" >&2
# crictl (kind load asks it whether a node has an image): cri-tools has no replace directives either.
log "go install sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
GOBIN="$tmp/gobin" CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n "${BUILD_NICE:-10}" go install -trimpath -ldflags="-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2
mv "$tmp/gobin/coredns" "$tmp/gobin/crictl" "$tmp/"
# pause: the C program in the Kubernetes module (build/pause/linux/pause.c), static.
kdir="$(go list -mod=readonly -m -f '{{.Dir}}' k8s.io/kubernetes)"
gcc -Os -Wall -Werror -static -DVERSION="$kver-verdict" -o "$tmp/pause" "$kdir/build/pause/linux/pause.c"
strip "$tmp/pause"
for n in "${names[@]}"; do mv -f "$tmp/$n" "$out/$n"; done
log "built in $(( $(date +%s) - start )) s: $(du -sh "$out" | cut -f1)"
# Older binary sets are of no use any more.
find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'bin-*' ! -name "bin-$hash" -exec rm -rf {} +
echo "$out"
