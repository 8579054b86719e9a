#!/usr/bin/env bash
# Smoke test for kube-embedded: build (cached), start with a temp state dir, check
# the apiserver, the controllers (Deployment -> ReplicaSet -> Pods, EndpointSlice,
# node lifecycle) and the scheduler (binding to a fake Node), SIGTERM, check a clean
# exit and closed ports, then restart on the same state dir and check that certs
# and etcd data were reused.
#
# Env: PORT / ETCD_PORT (default: free ports), KEEP_STATE=1 to keep the state dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[smoke %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; [[ -n "${state:-}" && -f "$state/stderr" ]] && { log "--- kube-embedded stderr (tail) ---"; tail -n 40 "$state/stderr" >&2; }; exit 1; }

command -v kubectl >/dev/null || fail "kubectl not found in PATH"

bin="$("$here/build.sh" | tail -n 1)"
[[ -x "$bin" ]] || fail "build.sh did not produce a binary"
log "binary: $bin ($(du -h "$bin" | cut -f1))"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="${PORT:-$(free_port)}"
etcd_port="${ETCD_PORT:-$(free_port)}"
etcd_peer_port="$(free_port)"
state="$(mktemp -d /tmp/kube-embedded-smoke.XXXXXX)"
kc="$state/kubeconfig"
pid=""

cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [[ "${KEEP_STATE:-0}" == 1 ]]; then log "state kept in $state"; else rm -rf "$state"; fi
}
trap cleanup EXIT

k() { kubectl --kubeconfig "$kc" --request-timeout=10s "$@"; }

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s.
wait_for() {
  local secs="$1" what="$2"; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < end )) || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.5
  done
}

start() {
  : >"$state/stdout"
  local t0; t0=$(date +%s.%N)
  # Short node-monitor grace period so that the node-lifecycle check below is quick.
  "$bin" --state-dir "$state" --port "$port" --etcd-port "$etcd_port" --etcd-peer-port "$etcd_peer_port" \
    --controller-manager-arg=--node-monitor-grace-period=12s \
    --controller-manager-arg=--node-monitor-period=2s \
    >>"$state/stdout" 2>>"$state/stderr" &
  pid=$!
  local end=$(( $(date +%s) + 180 ))
  until grep -q '^ready kubeconfig=' "$state/stdout"; do
    kill -0 "$pid" 2>/dev/null || fail "kube-embedded exited before ready"
    (( $(date +%s) < end )) || fail "no 'ready' line within 180s"
    sleep 0.1
  done
  ready_secs=$(echo "$(date +%s.%N) - $t0" | bc)
  [[ "$(grep -c . "$state/stdout")" == 1 ]] || fail "stdout must hold exactly the ready line, got: $(cat "$state/stdout")"
  [[ "$(cat "$state/stdout")" == "ready kubeconfig=$kc" ]] || fail "unexpected ready line: $(cat "$state/stdout")"
  rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  log "ready after ${ready_secs}s, RSS $((rss_kb / 1024)) MiB (pid $pid, apiserver :$port, etcd :$etcd_port/:$etcd_peer_port)"
}

stop() {
  local t0; t0=$(date +%s.%N)
  kill -TERM "$pid"
  local rc=0
  local end=$(( $(date +%s) + 10 ))
  while kill -0 "$pid" 2>/dev/null; do
    (( $(date +%s) < end )) || fail "kube-embedded did not exit within 10s of SIGTERM"
    sleep 0.1
  done
  wait "$pid" || rc=$?
  stop_secs=$(echo "$(date +%s.%N) - $t0" | bc)
  pid=""
  [[ "$rc" == 0 ]] || fail "kube-embedded exited with code $rc after SIGTERM"
  for p in "$port" "$etcd_port" "$etcd_peer_port"; do
    if ss -Hltn "sport = :$p" | grep -q .; then fail "port $p still listening after exit"; fi
  done
  log "stopped after SIGTERM in ${stop_secs}s, exit 0, ports $port $etcd_port $etcd_peer_port closed"
}

# ---------------------------------------------------------------- first run
start
first_ready=$ready_secs first_rss=$rss_kb

[[ "$(k get --raw /readyz)" == ok ]] || fail "/readyz is not ok"
k get ns >"$state/ns.txt" || fail "kubectl get ns failed"
grep -q '^kube-system ' "$state/ns.txt" || fail "kube-system namespace missing: $(cat "$state/ns.txt")"
log "/readyz ok; namespaces: $(awk 'NR>1 {print $1}' "$state/ns.txt" | xargs)"

k create deployment web --image=registry.invalid/web:1 --replicas=2 >/dev/null
has_rs() { [[ "$(k get rs -l app=web -o jsonpath='{.items[0].metadata.ownerReferences[0].name}')" == web ]]; }
wait_for 30 "a ReplicaSet owned by Deployment web" has_rs
two_pods() { [[ "$(k get pods -l app=web -o name | grep -c .)" == 2 ]]; }
wait_for 30 "2 pods of Deployment web" two_pods
log "deployment controller made ReplicaSet $(k get rs -l app=web -o name) and 2 pods"

unbound="$(k get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}{"|"}{end}')"
[[ "$unbound" == "||" ]] || fail "pods bound without any node: $unbound"

now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cat >"$state/node.yaml" <<EOF
apiVersion: v1
kind: Node
metadata:
  name: fake-node-1
  labels: {kubernetes.io/hostname: fake-node-1, kubernetes.io/os: linux}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: fake, lastHeartbeatTime: "$now", lastTransitionTime: "$now"}
EOF
k create -f "$state/node.yaml" >/dev/null
# Node status from a create is kept today, but set it through the status subresource
# as a kubelet would, so the test does not depend on that.
k patch node fake-node-1 --subresource=status --type=merge -p "$(printf '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"fake","lastHeartbeatTime":"%s","lastTransitionTime":"%s"}]}}' "$now" "$now")" >/dev/null
bound() { [[ "$(k get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}{"|"}{end}')" == "fake-node-1|fake-node-1|" ]]; }
wait_for 60 "scheduler to bind both pods to fake-node-1" bound
log "scheduler bound both pods to fake-node-1"

k create service clusterip web --tcp=80:8080 >/dev/null
has_slice() { k get endpointslices -l kubernetes.io/service-name=web -o name | grep -q .; }
wait_for 30 "an EndpointSlice for Service web" has_slice
log "endpointslice controller made $(k get endpointslices -l kubernetes.io/service-name=web -o name)"

# The node never renews a Lease or its status: node-lifecycle must mark it Unknown.
not_ready() { [[ "$(k get node fake-node-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == Unknown ]]; }
wait_for 60 "node-lifecycle controller to mark fake-node-1 Ready=Unknown" not_ready
log "node-lifecycle controller marked fake-node-1 Ready=Unknown (taints: $(k get node fake-node-1 -o jsonpath='{.spec.taints[*].key}'))"

ca_sum="$(sha256sum "$state/pki/ca.crt" | cut -d' ' -f1)"
stop
first_stop=$stop_secs

# ---------------------------------------------------------------- restart on the same state
start
[[ "$(sha256sum "$state/pki/ca.crt" | cut -d' ' -f1)" == "$ca_sum" ]] || fail "CA was regenerated on restart"
k get deployment web >/dev/null || fail "deployment web lost across restart (etcd data not reused)"
log "restart reused the CA and etcd data (deployment web still there)"
stop

log "PASS: ready ${first_ready}s (restart ${ready_secs}s), RSS $((first_rss / 1024)) MiB, SIGTERM->exit ${first_stop}s / ${stop_secs}s"
