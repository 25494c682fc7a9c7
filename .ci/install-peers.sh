#!/usr/bin/env bash
# Installs the real peers that outproc's integration tests (*IT, run by failsafe in `mvn verify`)
# talk to, on Debian 12 (bookworm), as root. Idempotent: when everything is present it only
# checks and exits. Facts behind the package list: ../shared/PEERS.md in the project notes.
#
# Usage: .ci/install-peers.sh [KERNEL_CACHE_DIR]
#   KERNEL_CACHE_DIR (default /var/cache/outproc-peers, or $OUTPROC_PEERS_DIR) receives the
#   Debian kernel image package (downloaded, not installed) unpacked with dpkg -x, and a
#   `kernel-version` file naming the unpacked version. The tests look there.
set -euo pipefail

CACHE_DIR="${1:-${OUTPROC_PEERS_DIR:-/var/cache/outproc-peers}}"

# Binaries (or files) whose presence proves a package is installed; checked before apt runs
# so a second run does not touch the network.
PACKAGES=(
  qemu-system-common     # qemu-storage-daemon (vhost-user-blk back-end)
  qemu-utils             # qemu-img
  qemu-system-x86        # qemu-system-x86_64 (vhost-user front-end)
  busybox-static         # guest userland
  cpio                   # initramfs tooling
  xz-utils               # unpacks the ELF vmlinux from the Debian vmlinuz
  gzip
  dpdk-dev               # dpdk-testpmd lives here, not in `dpdk`
  librte-net-vhost23     # net_vhost PMD (testpmd as vhost-user back-end)
  librte-net-virtio23    # net_virtio_user PMD (testpmd as vhost-user front-end)
  librte-mempool-ring23  # default mempool driver; testpmd cannot allocate mbufs without it
  python3-cryptography   # X25519/Ed25519 for the Python implementation of the migration format (PythonInteropTest)
)

log() { printf 'install-peers: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

updated=0
apt_update_once() {
  if [[ $updated -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq
    updated=1
  fi
}

export DEBIAN_FRONTEND=noninteractive
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_update_once
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel: the linux-image-<ver>-amd64 package that the linux-image-amd64 metapackage depends on.
mkdir -p "$CACHE_DIR"
kernel_pkg_of_meta() {
  apt-cache depends linux-image-amd64 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}
kernel_pkg="$(kernel_pkg_of_meta)"
if [[ -z $kernel_pkg ]]; then
  apt_update_once
  kernel_pkg="$(kernel_pkg_of_meta)"
fi
if [[ -z $kernel_pkg ]]; then
  log "cannot resolve the kernel package behind linux-image-amd64" >&2
  exit 1
fi
kernel_ver="${kernel_pkg#linux-image-}"
root="$CACHE_DIR/$kernel_pkg"
# An unpack is complete only once its marker exists (dpkg -x into a temporary directory, then rename).
if [[ ! -f $root/.unpacked || ! -f $root/boot/vmlinuz-$kernel_ver ]]; then
  work="$(mktemp -d "$CACHE_DIR/.download.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  log "downloading $kernel_pkg"
  if ! (cd "$work" && apt-get download -qq "$kernel_pkg" >/dev/null 2>&1); then
    apt_update_once
    (cd "$work" && apt-get download -qq "$kernel_pkg" >/dev/null)
  fi
  deb="$(ls "$work"/*.deb)"
  dpkg -x "$deb" "$work/root"
  touch "$work/root/.unpacked"
  rm -rf "$root"
  mv "$work/root" "$root"
  rm -rf "$work"
  trap - EXIT
  # A kernel update in the archive leaves the previous unpack behind; the tests use kernel-version.
  for old in "$CACHE_DIR"/linux-image-*; do
    if [[ $old != "$root" && -d $old ]]; then rm -rf "$old"; fi
  done
fi
printf '%s\n' "$kernel_ver" > "$CACHE_DIR/kernel-version.tmp"
mv "$CACHE_DIR/kernel-version.tmp" "$CACHE_DIR/kernel-version"

# Fail here, with the name, rather than later in a test.
for bin in qemu-storage-daemon qemu-system-x86_64 qemu-img dpdk-testpmd xz cpio gzip; do
  command -v "$bin" >/dev/null || { log "missing after install: $bin" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { log "missing after install: /bin/busybox" >&2; exit 1; }
log "ready: kernel $kernel_ver in $root"
