#!/usr/bin/env bash
# Installs the Debian packages the tests and the embedded cluster need, when missing:
# PostgreSQL (server binaries), Redis, iproute2, CNI plugins, xmllint and Chromium for the report
# tests, Prometheus for the PromQL metric source's tests, gcc and libc6-dev for the Go builds' cgo
# (with --bench: nginx, wrk; with --docker: Debian's docker.io engine and debootstrap, for the
# container tests, which start their own dockerd: see lib/docker/engine.ts; python3 and systemctl
# for the kind node image's build).
# Idempotent and quiet when all is there.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The report tests: junit.xml checked with xmllint against reports/schema/junit.xsd, and
# report.html opened in Debian's Chromium (playwright-core drives it; no browser download).
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
[[ -x /usr/bin/chromium ]] || need+=(chromium)
# The workflow tests: actionlint (scripts/actionlint.sh) checks the scripts in run: steps with shellcheck.
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
# The PromQL metric source is tested against a real Prometheus that the test starts (lib/metrics).
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# The Go builds (the embedded control plane, actionlint, the kind node image's binaries) use cgo when
# a C compiler is there, and then need the C library's headers too; pause.c needs both.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[[ -e /usr/include/stdio.h ]] || need+=(libc6-dev)
# The benchmarks' reference tools (make bench): nginx and wrk.
if [[ " $* " == *" --bench "* ]]; then
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
# The container tests (make test): an engine (dockerd, containerd, runc; the Docker CLI comes with
# it when the machine has none) and debootstrap for the registry-free base image.
if [[ " $* " == *" --docker "* ]]; then
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  # The kind node image's cold build (cluster/kind/node-image/build.sh): python3 patches kind's
  # entrypoint, systemctl enables the node's units offline (Debian's systemd as a tool: no init).
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  command -v systemctl >/dev/null 2>&1 || need+=(systemd)
fi
[[ ${#need[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-deps: missing Debian packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "setup-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# No package may start its service while it installs: a stock dockerd started by docker.io's
# postinst would turn on IP forwarding and set the FORWARD policy to DROP. policy-rc.d says no to
# invoke-rc.d and deb-systemd-invoke; ours is removed again afterwards.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# setup-deps: no service starts while packages install\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
# Debian starts these services on install where an init system runs (policy-rc.d stops most of
# them); the harness starts its own, so stop any that did start.
for svc in postgresql redis-server nginx prometheus; do
  command -v service >/dev/null 2>&1 && service "$svc" stop >/dev/null 2>&1 || true
done
