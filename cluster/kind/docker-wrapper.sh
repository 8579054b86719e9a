#!/usr/bin/env bash
# The `docker` that kind finds first on its PATH (cluster/kind/kind-cluster.ts puts a link to this
# script, named docker, in a folder of its own). It runs the real CLI ($VERDICT_REAL_DOCKER) with:
#
# - never a registry: `pull`, `push`, `login`, `search`, ... are refused (exit 125, as docker does
#   for a bad call); `run`/`create` get `--pull never` (and any other --pull is refused); `build`
#   gets `--pull=false`. kind pulls a node image it does not find; the provider makes sure the image
#   is present first, and this makes sure that a mistake cannot reach a registry anyway.
# - when VERDICT_KIND_UNPRIVILEGED=1 (a probe found that `docker run --privileged` is refused, as on
#   VMs whose bounding set lacks CAP_SYS_RESOURCE): kind's `run --privileged` becomes every
#   capability but that one, no masked /proc paths, every device allowed and /dev/kmsg, and its
#   `exec --privileged` a plain exec (the node container's capabilities).
#
# Every call is appended to $VERDICT_KIND_DOCKER_LOG when that is set (what ran, after the rewrite).
set -euo pipefail
real="${VERDICT_REAL_DOCKER:?VERDICT_REAL_DOCKER must name the real docker CLI}"
log() { [[ -n "${VERDICT_KIND_DOCKER_LOG:-}" ]] && printf '%s\n' "$*" >> "$VERDICT_KIND_DOCKER_LOG"; return 0; }
refuse() { log "REFUSED docker $*"; echo "verdict docker wrapper: refused \`docker $*\`: it would reach an image registry, which verdict never does" >&2; exit 125; }

args=("$@")
# The command is the first argument that is not a global option (-H/--host/--context/--config/-l take a value).
i=0
while (( i < ${#args[@]} )) && [[ "${args[i]}" == -* ]]; do
  case "${args[i]}" in -H|--host|--context|-c|--config|-l|--log-level) i=$((i + 2)) ;; *) i=$((i + 1)) ;; esac
done
cmd="${args[i]:-}"
verb="$cmd"
at=$((i + 1))
if [[ "$cmd" == container || "$cmd" == image || "$cmd" == builder ]] && (( at < ${#args[@]} )); then verb="${args[at]}"; at=$((at + 1)); fi

case "$cmd" in pull|push|login|logout|search|trust|manifest|buildx|compose|plugin) refuse "$@" ;; esac
[[ "$cmd" == image && ( "$verb" == pull || "$verb" == push ) ]] && refuse "$@"

unpriv="${VERDICT_KIND_UNPRIVILEGED:-0}"
out=("${args[@]:0:at}")
rest=("${args[@]:at}")
case "$verb" in
  run|create)
    pull=""
    for a in "${rest[@]}"; do case "$a" in --pull=*) pull="${a#--pull=}" ;; esac; done
    for ((j = 0; j < ${#rest[@]}; j++)); do [[ "${rest[j]}" == --pull ]] && pull="${rest[j + 1]:-}"; done
    [[ -n "$pull" && "$pull" != never ]] && refuse "$@"
    [[ -z "$pull" ]] && out+=(--pull never)
    if [[ "$unpriv" == 1 ]]; then
      for a in "${rest[@]}"; do
        if [[ "$a" == --privileged ]]; then
          out+=(--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt systempaths=unconfined --device-cgroup-rule='a *:* rwm' --device /dev/kmsg)
        else out+=("$a"); fi
      done
      rest=()
    fi
    ;;
  exec)
    if [[ "$unpriv" == 1 ]]; then
      for a in "${rest[@]}"; do [[ "$a" == --privileged ]] || out+=("$a"); done
      rest=()
    fi
    ;;
  build)
    for a in "${rest[@]}"; do [[ "$a" == --pull || ( "$a" == --pull=* && "$a" != --pull=false ) ]] && refuse "$@"; done
    out+=(--pull=false)
    ;;
esac
out+=("${rest[@]}")
log "docker ${out[*]}"
exec "$real" "${out[@]}"
