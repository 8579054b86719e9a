#!/usr/bin/env bash
# `make kind-node-image`: a kind node image for Kubernetes v1.37.2 built here, without any image
# registry, and imported into the engine at DOCKER_HOST as
#   verdict/kind-node:v1.37.2-<hash>
# (the tag is printed on the last line of stdout; progress goes to stderr).
#
# What it is made of:
# - the binaries of build-binaries.sh: kubelet, kubeadm, kubectl, kube-apiserver,
#   kube-controller-manager, kube-scheduler, kube-proxy (k8s.io/kubernetes v1.37.2), etcd 3.7.0,
#   CoreDNS, crictl (Go module proxy) and pause (pause.c from the Kubernetes module);
# - a `debootstrap --variant=minbase bookworm` root with Debian's systemd, containerd 1.6, runc,
#   CNI plugins, iptables and conntrack;
# - kind v0.33.0's own node files (entrypoint, systemd units, kubelet drop-ins, containerd config,
#   sysctls), taken from the kind module in the Go module cache and changed where this machine needs
#   it (see patch_kind_files below);
# - the control-plane images kubeadm asks for (`kubeadm config images list`), each a minbase root
#   with iptables + conntrack plus its binary, imported at build time into the node's containerd
#   (content only, unpacked on first use, as kind's own node images do), so that no node ever
#   needs a registry.
#
# Cached outside the repo, keyed by a hash of every input (this script, the binaries' hash, kind's
# version, the suite, the package list, the host's CA bundle):
#   ${VERDICT_CACHE:-~/.cache/verdict}/kind-node/<hash>/node.tar
# A warm machine re-imports that tar (or does nothing when the engine has the tag with the same
# hash). Needs root (debootstrap) and an engine at DOCKER_HOST (lib/docker/engine.ts starts one).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KIND_VERSION=v0.33.0
K8S_VERSION=v1.37.2
SUITE=bookworm
MIRROR="${VERDICT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${VERDICT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
NODE_PACKAGES=systemd,dbus,containerd,runc,containernetworking-plugins,iptables,conntrack,iproute2,kmod,procps,ca-certificates,ethtool,socat,libseccomp2
COMPONENT_PACKAGES=iptables,conntrack,ca-certificates
REPO_TAG=verdict/kind-node
cache="${VERDICT_CACHE:-$HOME/.cache/verdict}/kind-node"
export DOCKER_BUILDKIT=0

say() { echo "kind-node-image: $*" >&2; }
# Runs a command with its stderr shown only when it fails (the classic builder's deprecation notice is noise).
quiet() { local err; err="$(mktemp)"; if "$@" 2>"$err" >/dev/null; then rm -f "$err"; else cat "$err" >&2; rm -f "$err"; return 1; fi; }
[[ -n "${DOCKER_HOST:-}" ]] || { say "DOCKER_HOST is not set (start an engine: node lib/docker/engine.ts up)"; exit 2; }

# What a cold build needs on this machine, all named at once (a warm one, with node.tar cached, only
# imports it). Checked before the binaries' long build when no node image is cached at all, and again
# before the root is made.
cold_build_tools() {
  local missing=()
  command -v go >/dev/null || missing+=("go (Go >= 1.26: the binaries are built from source)")
  command -v gcc >/dev/null || missing+=("gcc (Debian's gcc and libc6-dev: pause.c and cgo)")
  command -v docker >/dev/null || missing+=("docker (the Docker CLI, from Debian's docker.io)")
  command -v debootstrap >/dev/null || missing+=("debootstrap (Debian's debootstrap: the node's root)")
  command -v containerd >/dev/null && command -v ctr >/dev/null ||
    missing+=("containerd and ctr (Debian's containerd, a dependency of docker.io: the images into the node)")
  command -v python3 >/dev/null || missing+=("python3 (Debian's python3: patches kind's entrypoint)")
  command -v systemctl >/dev/null || missing+=("systemctl (Debian's systemd, as a tool only: enables the node's units with --root)")
  [[ ${#missing[@]} -eq 0 ]] && return 0
  say "the node image's cold build needs what this machine lacks:"
  printf '  - %s\n' "${missing[@]}" >&2
  say "scripts/setup-deps.sh --docker installs the Debian packages (make docker-deps); Go >= 1.26 is yours to install"
  exit 2
}
compgen -G "$cache/*/node.tar" >/dev/null || cold_build_tools

bin="$("$here/build-binaries.sh" | tail -1)"
kind_mod="$(cd / && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$kind_mod/images/base/files" ]] || { say "kind $KIND_VERSION's module has no images/base/files ($kind_mod)"; exit 1; }

hash=$( { cat "$here/build.sh" "$here/build-binaries.sh" | sha256sum; basename "$bin"; echo "$KIND_VERSION $K8S_VERSION $SUITE $MIRROR $NODE_PACKAGES $COMPONENT_PACKAGES"; sha256sum < "$CA_BUNDLE"; } | sha256sum | cut -c1-16)
tag="$REPO_TAG:$K8S_VERSION-$hash"
have=$(docker image inspect --format '{{ index .Config.Labels "verdict.kind-node.hash" }}' "$tag" 2>/dev/null || true)
if [[ "$have" == "$hash" ]]; then
  say "$tag is present (inputs $hash)"
  echo "$tag"
  exit 0
fi

dir="$cache/$hash"
if [[ ! -s "$dir/node.tar" ]]; then
  [[ $(id -u) -eq 0 ]] || { say "debootstrap needs root"; exit 2; }
  cold_build_tools
  mkdir -p "$dir"
  tmp="$(mktemp -d "$dir/build.XXXXXX")"
  ctd_pid=""
  built_tags=()
  cleanup() {
    [[ -n "$ctd_pid" ]] && { kill "$ctd_pid" 2>/dev/null || true; wait "$ctd_pid" 2>/dev/null || true; }
    # debootstrap mounts /proc and /sys in its targets while it works; never leave them.
    for m in $(awk -v d="$tmp/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    for t in "${built_tags[@]}"; do docker image rm "$t" >/dev/null 2>&1 || true; done
    rm -rf "$tmp"
  }
  trap cleanup EXIT
  started=$(date +%s)

  say "debootstrap --variant=minbase $SUITE twice, in parallel: the node ($NODE_PACKAGES) and the control-plane images' base ($COMPONENT_PACKAGES)"
  debootstrap --variant=minbase --include="$NODE_PACKAGES" "$SUITE" "$tmp/node" "$MIRROR" > "$tmp/debootstrap-node.log" 2>&1 &
  node_job=$!
  debootstrap --variant=minbase --include="$COMPONENT_PACKAGES" "$SUITE" "$tmp/component" "$MIRROR" > "$tmp/debootstrap-component.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap-component.log" >&2; say "debootstrap (component base) failed"; wait "$node_job" || true; exit 1; }
  wait "$node_job" || { tail -20 "$tmp/debootstrap-node.log" >&2; say "debootstrap (node) failed"; exit 1; }

  slim() {
    local r="$1"
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/debconf/*-old \
      "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/log/*.log "$r"/var/log/apt/*
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
    echo "deb $MIRROR $SUITE main" > "$r/etc/apt/sources.list"
    mkdir -p "$r/etc/ssl/certs" && cp "$CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
  }

  # ---- the control-plane images: one shared base layer, one layer per binary ----------------------
  slim "$tmp/component"
  base_tag="verdict/kind-component-base:$hash"
  tar -C "$tmp/component" --numeric-owner -cf "$tmp/component.tar" .
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tmp/component.tar" "$base_tag" >/dev/null
  built_tags+=("$base_tag")
  rm -rf "$tmp/component" "$tmp/component.tar"
  mapfile -t wanted < <("$bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
  [[ ${#wanted[@]} -ge 7 ]] || { say "kubeadm config images list gave ${#wanted[@]} images: ${wanted[*]}"; exit 1; }
  pause_image=""
  for ref in "${wanted[@]}"; do
    name="${ref##*/}"; name="${name%%:*}"
    ctx="$tmp/ctx-$name"; mkdir -p "$ctx"
    case "$name" in
      kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|etcd)
        cp "$bin/$name" "$ctx/"; printf 'FROM %s\nCOPY %s /usr/local/bin/%s\n' "$base_tag" "$name" "$name" > "$ctx/Dockerfile" ;;
      coredns)
        cp "$bin/coredns" "$ctx/"; printf 'FROM %s\nCOPY coredns /coredns\nENTRYPOINT ["/coredns"]\n' "$base_tag" > "$ctx/Dockerfile" ;;
      pause)
        pause_image="$ref"
        cp "$bin/pause" "$ctx/"; printf 'FROM %s\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' "$base_tag" > "$ctx/Dockerfile" ;;
      *) say "kubeadm wants an image this script cannot build: $ref"; exit 1 ;;
    esac
    printf 'LABEL org.opencontainers.image.description="%s built from source by verdict (cluster/kind/node-image), not the upstream image"\n' "$name" >> "$ctx/Dockerfile"
    quiet docker build --pull=false --network none -q -t "$ref" "$ctx"
    built_tags+=("$ref")
  done
  say "control-plane images built: ${wanted[*]}"
  docker save -o "$tmp/images.tar" "${wanted[@]}"

  # ---- the node root ---------------------------------------------------------------------------
  r="$tmp/node"
  slim "$r"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' > "$r/etc/dpkg/dpkg.cfg.d/01-verdict-nodoc"
  f="$kind_mod/images/base/files"
  install -d "$r/kind/bin" "$r/kind/manifests" "$r/etc/containerd" "$r/etc/systemd/system/kubelet.service.d" "$r/etc/kubernetes/manifests" "$r/opt/cni" "$r/etc/cni/net.d"
  install -m 0755 "$f/usr/local/bin/entrypoint" "$r/usr/local/bin/entrypoint"
  install -m 0755 "$f"/kind/bin/*.sh "$r/kind/bin/"
  install -m 0644 "$f/etc/containerd/config.toml" "$r/etc/containerd/config.toml"
  install -m 0644 "$f/etc/crictl.yaml" "$r/etc/crictl.yaml"
  install -m 0644 "$f/etc/default/kubelet" "$r/etc/default/kubelet"
  install -m 0644 "$f"/etc/sysctl.d/* "$r/etc/sysctl.d/"
  for u in containerd.service kubelet.service kubelet.slice undo-mount-hacks.service; do install -m 0644 "$f/etc/systemd/system/$u" "$r/etc/systemd/system/$u"; done
  install -m 0644 "$f"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"

  # What this machine needs changed in kind's files (each change is also right where --privileged works):
  # - containerd is Debian's (/usr/bin); kind's config is containerd's v2 format, which 1.6 reads.
  # - no fuse-overlayfs proxy plugin and no base runtime spec (kind builds those itself; not here).
  # - restrict_oom_score_adj = true: without CAP_SYS_RESOURCE (these VMs' bounding set lacks it) a
  #   container may not lower its oom_score_adj below its parent's, and runc would fail pods that ask.
  # - the sandbox image is the pause image kubeadm v1.37.2 asks for (built above).
  # - the entrypoint remounts the cgroup hierarchies read-write: without --privileged, Docker
  #   mounts them read-only and the kubelet and systemd cannot make their cgroups.
  sed -i -e 's#^ExecStart=/usr/local/bin/containerd#ExecStart=/usr/bin/containerd#' "$r/etc/systemd/system/containerd.service"
  sed -i -e '/^\[proxy_plugins/,/^$/d' -e '/^# fuse-overlayfs/d' -e '/base_runtime_spec/d' \
    -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
    -e "s#sandbox_image = \".*\"#sandbox_image = \"$pause_image\"#" "$r/etc/containerd/config.toml"
  grep -q 'restrict_oom_score_adj = true' "$r/etc/containerd/config.toml" && grep -q "sandbox_image = \"$pause_image\"" "$r/etc/containerd/config.toml" ||
    { say "kind $KIND_VERSION's containerd config did not take the changes"; exit 1; }
  python3 - "$r/usr/local/bin/entrypoint" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
fn = '''
# verdict: without --privileged (a bounding set without CAP_SYS_RESOURCE refuses it), Docker mounts
# /sys/fs/cgroup and every hierarchy read-only; systemd and the kubelet must create cgroups. A bind
# remount changes only this mount's flag (a plain remount of a cgroup v1 hierarchy is "busy").
remount_cgroups_rw() {
  local m
  for m in /sys/fs/cgroup $(findmnt -lun -o target -t cgroup,cgroup2 | grep '^/sys/fs/cgroup' || true); do
    if findmnt -lun -o options "$m" | head -1 | grep -qw ro; then
      log_info "remounting $m read-write"
      mount -o remount,bind,rw "$m" || log_warn "could not remount $m read-write"
    fi
  done
}

'''
anchor = '\nfix_cgroup() {'
assert anchor in s, 'fix_cgroup not found'
s = s.replace(anchor, '\n' + fn + 'fix_cgroup() {', 1)
call = '\nfix_cgroup\n'
assert call in s, 'fix_cgroup call not found'
s = s.replace(call, '\nremount_cgroups_rw\nfix_cgroup\n', 1)
open(p, 'w').write(s)
PY
  ln -sfn /usr/lib/cni "$r/opt/cni/bin"
  install -m 0755 "$bin/kubelet" "$bin/kubeadm" "$bin/kubectl" "$r/usr/bin/"
  install -m 0755 "$bin/crictl" "$r/usr/local/bin/"
  echo -n "$K8S_VERSION" > "$r/kind/version"
  cat > "$r/kind/manifests/default-storage.yaml" <<'YAML'
# host-path based default storage class (kind's fallback; no provisioner image is needed)
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
YAML
  # As kind's base image: only the services a node needs, systemd as init, no kmsg in journald.
  find "$r/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* "$r"/lib/systemd/system/local-fs.target.wants/* \
    "$r"/lib/systemd/system/sockets.target.wants/*udev* "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$r/etc/systemd/journald.conf"
  ln -sfn /usr/lib/systemd/systemd "$r/sbin/init"
  systemctl --root="$r" enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  systemctl --root="$r" mask systemd-binfmt.service >/dev/null 2>&1
  rm -f "$r/etc/machine-id" && touch "$r/etc/machine-id"

  # The control-plane images into the node's containerd: a containerd of the host's (Debian's, the
  # same 1.6 as in the node) with its root in the node's /var/lib/containerd, its own state folder
  # and socket, no CRI; content only (--no-unpack): the node's CRI unpacks an image on first use.
  cat > "$tmp/containerd.toml" <<TOML
version = 2
root = "$r/var/lib/containerd"
state = "$tmp/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$tmp/containerd.sock"
[ttrpc]
  address = "$tmp/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/containerd-opt"
TOML
  containerd --config "$tmp/containerd.toml" > "$tmp/containerd.log" 2>&1 &
  ctd_pid=$!
  for _ in $(seq 100); do ctr -a "$tmp/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr -a "$tmp/containerd.sock" -n k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests "$tmp/images.tar" >&2
  kill "$ctd_pid"; wait "$ctd_pid" 2>/dev/null || true; ctd_pid=""
  rm -rf "$tmp/images.tar"

  tar -C "$r" --numeric-owner -cf "$tmp/node.tar" .
  mv "$tmp/node.tar" "$dir/node.tar"
  say "node root filesystem built in $(( $(date +%s) - started )) s: $(du -sh "$dir/node.tar" | cut -f1) ($dir)"
  # Older caches of other inputs are of no use any more.
  find "$cache" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' ! -name "$hash" -exec rm -rf {} +
fi

say "docker import $tag"
# `docker import` takes no STOPSIGNAL: a one-line build on the imported root adds it (no layer).
docker import \
  --change 'ENV container=docker' \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  "$dir/node.tar" "$tag-rootfs" >/dev/null
printf 'FROM %s\n# systemd exits on SIGRTMIN+3, not SIGTERM (which re-executes it)\nSTOPSIGNAL SIGRTMIN+3\nLABEL verdict.kind-node.hash=%s\nLABEL org.opencontainers.image.description="%s"\n' \
  "$tag-rootfs" "$hash" "kind node: Kubernetes $K8S_VERSION built from source, Debian $SUITE, kind $KIND_VERSION node files: built without a registry by cluster/kind/node-image/build.sh" |
  quiet docker build --pull=false --network none -q -t "$tag" -
docker image rm "$tag-rootfs" >/dev/null
echo "$tag"
