#!/usr/bin/env bash
# `make fresh-check`: the setup of a new machine, run for real from nothing, with the host untouched.
#
# A clean Debian bookworm root (debootstrap --variant=minbase: no Node, no npm, no CA certificates,
# no compiler), a fresh copy per run, with the repository copied in (the tracked files as they are
# in the working tree: in CI, the commit under test). In it, as root, one after the other:
#   scripts/setup-deps.sh, --bench, --docker   every install branch, then once more (must be quiet)
#   scripts/node24.sh                         Node 24 (npm comes from Debian first: there is none)
#   apt-get install make                      the one tool the README's commands need besides git
#   make node_modules/.package-lock.json      npm ci, with Node 24 first on PATH by the Makefile
#   node cli/verdict.mjs --help               the launcher, on Debian's older Node, finds Node 24
# Each step prints its wall time; the first failure stops the run, names the step and shows the end
# of its log (every log is kept in .reports/fresh-check/). No cluster, no dockerd is started.
#
# The host: only debootstrap (and Debian's archive keyring, on Ubuntu) is installed, when missing.
# Each step runs in its own mount and PID namespace (unshare): /proc, a small /dev and /dev/pts are
# mounted there only, so the host never sees them and they go when the step ends, Ctrl-C and kill
# included; what a step leaves running is listed, killed and reported as a failure. The root is
# removed at the end (refused, and said, if anything is still mounted under it).
# The root's trust and name resolution are the host's: its CA certificates (registries are reached
# here through a TLS-inspecting proxy that only the host trusts; npm and Node are pointed at the
# bundle, as scripts/docker-base.sh does) and its /etc/resolv.conf. Debian's mirror:
# VERDICT_DEBIAN_MIRROR, VERDICT_DEBIAN_SECURITY_MIRROR.
#
# The debootstrapped root is cached as a tar, one per suite and ISO week (a new machine's image is
# never current either; apt-get update brings the lists):
#   ${VERDICT_CACHE:-~/.cache/verdict}/fresh-root/bookworm-minbase-v1-<year>-W<week>.tar
#
#   scripts/fresh-check.sh                 the check (root)
#   scripts/fresh-check.sh --needed        exit 0 and say why when CI should run it: a setup file
#                                          changed since the last green CI run, or none is recorded;
#                                          exit 1 (and say why not) otherwise
#   scripts/fresh-check.sh --record-green  record HEAD as the last green CI run (.ci/run, at its end)
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=bookworm
ROOT_VERSION=1 # bump when the recipe of the cached root changes
MIRROR="${VERDICT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${VERDICT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
CA_BUNDLE="${VERDICT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
CACHE="${VERDICT_CACHE:-$HOME/.cache/verdict}"
LOGS="${REPORTS:-.reports}/fresh-check"
# What counts as a setup file for --needed (git pathspecs).
SETUP_FILES=(':(glob)scripts/*.sh' ':(glob)cluster/**/build.sh' Makefile package.json package-lock.json .nvmrc)

say() { echo "fresh-check: $*" >&2; }

case "${1:-}" in
  --needed)
    record="$CACHE/ci-last-green"
    [[ -s "$record" ]] || { echo "no green CI run recorded on this machine ($record)"; exit 0; }
    last="$(head -c 40 "$record")"
    git cat-file -e "$last^{commit}" 2>/dev/null || { echo "the last green commit $last is not in this clone"; exit 0; }
    changed="$(git diff --name-only "$last" HEAD -- "${SETUP_FILES[@]}")"
    if [[ -n "$changed" ]]; then
      echo "setup files changed since the last green run (${last:0:12}): $(echo "$changed" | paste -sd ' ')"
      exit 0
    fi
    echo "no setup file changed since the last green run (${last:0:12})"
    exit 1
    ;;
  --record-green)
    mkdir -p "$CACHE"
    git rev-parse HEAD > "$CACHE/ci-last-green"
    exit 0
    ;;
  '') ;;
  *) say "unknown argument: $1 (usage: scripts/fresh-check.sh [--needed | --record-green])"; exit 64 ;;
esac

[[ $(id -u) -eq 0 ]] || { say "needs root (debootstrap, chroot, mounts): sudo make fresh-check"; exit 2; }
[[ -r "$CA_BUNDLE" ]] || { say "no CA bundle at $CA_BUNDLE (set VERDICT_CA_BUNDLE)"; exit 2; }
command -v unshare >/dev/null || { say "unshare not found (Debian's util-linux)"; exit 2; }
git rev-parse --git-dir >/dev/null 2>&1 || { say "not a git checkout: the root gets the tracked files (git archive)"; exit 2; }

# Each step runs as a job of its own process group (job control), so that an interrupted run stops
# the whole step (unshare, and with it every process of the step's namespace) at once.
set -m
started=$SECONDS
timings=()
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
r=""
step_pid=""
finish() {
  local rc=$? m left
  trap - EXIT INT TERM
  if [[ -n "$step_pid" ]]; then kill -TERM -- "-$step_pid" 2>/dev/null || true; wait "$step_pid" 2>/dev/null || true; fi
  if [[ -n "$r" && -d "$r" ]]; then
    # Nothing should be left: the steps' mounts and processes lived in namespaces that are gone.
    left="$(awk -v d="$r/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)"
    for m in $left; do say "unmounting $m (left mounted on the host)"; umount "$m" 2>/dev/null || umount -l "$m" || true; done
    kill_in_root "after the run" || rc=1
    if awk -v d="$r/" 'index($5 "/", d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
      say "NOT removing $r: something is still mounted under it"
      rc=1
    else
      local t0=$SECONDS
      rm -rf --one-file-system "$r"
      say "root removed in $((SECONDS - t0)) s"
    fi
  fi
  exit "$rc"
}
trap finish EXIT
trap 'say "interrupted"; exit 130' INT TERM

# Processes on the host whose root is the fresh root (none are expected: the steps' PID namespaces
# end with them): listed, killed, and a failure.
kill_in_root() {
  local p pid root found=()
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    root="$(readlink "$p/root" 2>/dev/null)" || continue
    [[ "$root" == "$r" || "$root" == "$r/"* ]] && found+=("$pid")
  done
  [[ ${#found[@]} -eq 0 ]] && return 0
  for pid in "${found[@]}"; do say "left running in the root ($1), killed: $pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"; done
  kill -KILL "${found[@]}" 2>/dev/null || true
  return 1
}

# step NAME CMD...: runs CMD with its output in $LOGS/<n>-<name>.log, prints the wall time.
n=0
step() {
  local name="$1" t0=$SECONDS rc=0 log
  shift
  n=$((n + 1))
  log="$LOGS/$n-${name//[^A-Za-z0-9._-]/_}.log"
  say "[$n] $name ..."
  "$@" < /dev/null > "$log" 2>&1 &
  step_pid=$!
  wait "$step_pid" || rc=$?
  step_pid=""
  timings+=("$(printf '%4d s  %s' $((SECONDS - t0)) "$name")")
  if [[ $rc -ne 0 ]]; then
    tail -n 40 "$log" | sed 's/^/  | /' >&2
    say "FAILED at step $n, $name (exit $rc, after $((SECONDS - t0)) s; its log: $log)"
    summary
    exit 1
  fi
  say "[$n] $name: $((SECONDS - t0)) s"
}
summary() {
  say "wall time per step:"
  printf '  %s\n' "${timings[@]}" >&2
  say "total $((SECONDS - started)) s"
}

# ---- the host: debootstrap, the cached root -----------------------------------------------------
host_tools() {
  local need=()
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
  [[ ${#need[@]} -eq 0 ]] && return 0
  echo "installing on the host: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
}
step "host: debootstrap present" host_tools

tarball="$CACHE/fresh-root/$SUITE-minbase-v$ROOT_VERSION-$(date +%G-W%V).tar"
make_root_tar() {
  local tmp
  mkdir -p "$(dirname "$tarball")"
  tmp="$(mktemp -d "$CACHE/fresh-root/build.XXXXXX")"
  # debootstrap mounts /proc and /sys in its target while it works: in a mount namespace of its own,
  # they can never be left on the host.
  if ! unshare --mount --propagation private debootstrap --variant=minbase "$SUITE" "$tmp/root" "$MIRROR"; then
    rm -rf --one-file-system "$tmp"
    return 1
  fi
  rm -rf "$tmp"/root/var/lib/apt/lists/* "$tmp"/root/var/cache/apt/archives/*.deb
  tar -C "$tmp/root" --numeric-owner -cf "$tmp/root.tar" .
  mv "$tmp/root.tar" "$tarball"
  rm -rf --one-file-system "$tmp"
  # Older roots are of no use any more.
  find "$CACHE/fresh-root" -maxdepth 1 -name "$SUITE-minbase-*.tar" ! -path "$tarball" -delete
  du -h "$tarball"
}
if [[ ! -s "$tarball" ]]; then
  step "debootstrap --variant=minbase $SUITE (cached for the week)" make_root_tar
fi

r="$(mktemp -d /var/tmp/verdict-fresh.XXXXXX)"
fill_root() {
  tar -C "$r" -xf "$tarball"
  # A new Debian machine's sources, and the host's trust and name resolution.
  rm -f "$r/etc/apt/sources.list"
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" > "$r/etc/apt/sources.list"
  mkdir -p "$r/etc/ssl/certs" "$r/usr/local/share/ca-certificates"
  cp "$CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
  # Local CAs kept by update-ca-certificates when a package brings Debian's ca-certificates.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/"; fi
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  # The repository: the tracked files as they are now (git stash create: a commit of the working
  # tree's tracked changes, or nothing when there are none; it touches neither the tree nor the stash).
  local tree
  tree="$(git -c user.name=fresh-check -c user.email=fresh-check@localhost stash create)"
  tree="${tree:-HEAD}"
  mkdir -p "$r/root/verdict"
  git archive --format=tar "$tree" | tar -C "$r/root/verdict" -xf -
  echo "repository: $(git rev-parse --short HEAD)$([[ $tree != HEAD ]] && echo ' with the working tree'\''s changes to tracked files')"
  du -sh "$r"
}
step "fresh root from the cache, repository copied in" fill_root

# in_root CMD: runs the shell command CMD in the root, as root, in namespaces of its own, with a
# new machine's environment plus the host's CA bundle for Node and npm. Fails when CMD fails or
# leaves a process behind (listed, then killed with the namespace).
in_root() {
  unshare --mount --pid --fork --kill-child --propagation private bash -c '
    set -euo pipefail
    r="$1"; cmd="$2"
    mount -t proc proc "$r/proc"
    mount -t tmpfs -o mode=0755,nosuid,size=16m dev "$r/dev"
    for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
      IFS=: read -r name major minor <<<"$d"
      mknod -m 0666 "$r/dev/$name" c "$major" "$minor"
    done
    mkdir -p "$r/dev/pts" "$r/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
    ln -s pts/ptmx "$r/dev/ptmx"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm"
    ln -s /proc/self/fd "$r/dev/fd"
    ln -s /proc/self/fd/0 "$r/dev/stdin"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"
    rc=0
    chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
      /bin/bash -c "cd /root/verdict && $cmd" </dev/null || rc=$?
    # This shell is PID 1 of the namespace (the proc mounted in the root shows only the namespace):
    # any other process is one the step left behind.
    left=()
    for p in "$r"/proc/[0-9]*; do pid="${p##*/}"; [[ $pid == 1 ]] || left+=("$pid"); done
    if [[ ${#left[@]} -gt 0 ]]; then
      for pid in "${left[@]}"; do
        echo "fresh-check: left running by the step, killed: $pid $(tr "\0" " " < "$r/proc/$pid/cmdline" 2>/dev/null)"
      done
      kill -KILL "${left[@]}" 2>/dev/null || true
      [[ $rc -ne 0 ]] || rc=1
    fi
    exit "$rc"
  ' in_root "$r" "$1"
}

step "setup-deps.sh" in_root 'scripts/setup-deps.sh'
step "setup-deps.sh --bench" in_root 'scripts/setup-deps.sh --bench'
step "setup-deps.sh --docker" in_root 'scripts/setup-deps.sh --docker'
# Idempotent and quiet when all is there: a second run installs nothing and prints nothing.
step "setup-deps.sh --bench --docker again (installs nothing)" in_root \
  'out="$(scripts/setup-deps.sh --bench --docker 2>&1)"; [[ -z "$out" ]] || { echo "a second run printed: $out"; exit 1; }'
step "node24.sh" in_root 'scripts/node24.sh && "$(scripts/node24.sh)/node" --version'
# What the README's commands need besides git (which brought the repository): make.
step "apt-get install make" in_root 'apt-get install -y -qq --no-install-recommends make'
# npm ci the way make verify-local and make test run it (Node 24 first on PATH, from the Makefile).
step "npm ci (make node_modules/.package-lock.json)" in_root 'make node_modules/.package-lock.json && node_modules/.bin/tsc --version'
# The launcher on the machine's own Node (Debian's, older) must find Node 24 by itself.
step "node cli/verdict.mjs --help" in_root \
  'command -v node >/dev/null || { echo "no node on PATH"; exit 1; }; echo "node on PATH: $(node --version)"; out="$(node cli/verdict.mjs --help)"; echo "$out"; grep -q verify-local <<<"$out"'
summary
say "PASS: a new $SUITE machine sets up from nothing"
