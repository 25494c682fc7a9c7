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

# QEMU >= 10.1 with its vfio-user client (`vfio-user-pci`): bookworm ships 7.2 without it, so it is
# built once per machine from Debian sid's own source package into $CACHE_DIR/qemu-vfio-user
# (bin/qemu-system-x86_64 plus a `version` file; `.built` marks a complete build). The system's apt
# sources stay untouched: a private apt configuration reads sid's source index and bookworm-backports
# (meson >= 1.5, which the repacked source needs because Debian drops the bundled meson wheels).
# Firmware comes from bookworm's seabios and qemu-system-data: -L /usr/share/seabios -L /usr/share/qemu.
QEMU_VFIO_USER_DIR="$CACHE_DIR/qemu-vfio-user"
QEMU_VFIO_USER_MIN=10.1
build_qemu_vfio_user() {
  local dest="$QEMU_VFIO_USER_DIR"
  if [[ -f $dest/.built && -x $dest/bin/qemu-system-x86_64 ]]; then
    return 0
  fi
  local deps=(ninja-build libglib2.0-dev libpixman-1-dev flex bison python3-venv pkg-config gcc
              xz-utils patch debian-archive-keyring seabios qemu-system-data)
  local dep need=()
  for dep in "${deps[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q '^install ok installed$'; then
      need+=("$dep")
    fi
  done
  if [[ ${#need[@]} -gt 0 ]]; then
    apt_update_once
    log "installing QEMU build dependencies ${need[*]}"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi

  local work
  work="$(mktemp -d "$CACHE_DIR/.qemu-vfio-user.XXXXXX")"
  chmod 755 "$work"  # apt downloads as _apt
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src" "$work/meson"
  cat > "$work/apt/sources.list" <<SOURCES
deb-src [signed-by=$keyring] http://deb.debian.org/debian sid main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-backports main
SOURCES
  local apt_opts=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o Dir::Etc::sourceparts=-
                  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
  log "reading sid's qemu source index and bookworm-backports (private apt configuration)"
  apt-get "${apt_opts[@]}" update -qq

  # The index can name versions the archive no longer serves: try from the newest down to the minimum.
  local versions version got=""
  versions="$(apt-cache "${apt_opts[@]}" showsrc qemu | sed -n 's/^Version: //p' | sort -Vr -u)"
  for version in $versions; do
    local upstream="${version#*:}"
    upstream="${upstream%%+*}"
    if [[ "$(printf '%s\n%s\n' "$QEMU_VFIO_USER_MIN" "$upstream" | sort -V | head -n1)" != "$QEMU_VFIO_USER_MIN" ]]; then
      continue
    fi
    log "downloading qemu source $version"
    if (cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq "qemu=$version" >/dev/null 2>&1); then
      got="$version"
      break
    fi
    rm -f "$work/src"/*
  done
  if [[ -z $got ]]; then
    log "no qemu source >= $QEMU_VFIO_USER_MIN could be downloaded (versions listed: $versions)" >&2
    exit 1
  fi

  local tree="$work/src/tree"
  mkdir -p "$tree"
  tar -xf "$(ls "$work"/src/qemu_*.orig.tar.xz)" -C "$tree" --strip-components=1
  tar -xf "$(ls "$work"/src/qemu_*.debian.tar.xz)" -C "$tree"
  # The +ds repack drops the firmware blobs: Debian's own patches stop the build from unpacking them.
  local p
  for p in "$tree"/debian/patches/*skip-unpack-edk2-blobs* "$tree"/debian/patches/*skip-install-dtb*; do
    [[ -f $p ]] && (cd "$tree" && patch -p1 -s < "$p")
  done

  # meson >= 1.5 from bookworm-backports, unpacked into a venv of Debian's own python3.
  (cd "$work/meson" && apt-get "${apt_opts[@]}" download -qq meson/bookworm-backports python3-pycotap/bookworm-backports >/dev/null)
  local deb
  for deb in "$work"/meson/*.deb; do dpkg -x "$deb" "$work/meson/root"; done
  /usr/bin/python3 -m venv "$work/venv"
  local site
  site="$("$work/venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cp -r "$work"/meson/root/usr/lib/python3/dist-packages/* "$site/"

  log "building qemu-system-x86_64 $got (about 5 minutes on 2 CPUs)"
  (cd "$tree" && ./configure --python="$work/venv/bin/python3" --target-list=x86_64-softmmu \
      --disable-docs --disable-werror --disable-download --disable-install-blobs --disable-tools \
      --disable-guest-agent --disable-slirp --disable-vnc >"$work/configure.log" 2>&1) \
    || { tail -n 40 "$work/configure.log" >&2; exit 1; }
  (cd "$tree/build" && ninja -j2 qemu-system-x86_64 >"$work/ninja.log" 2>&1) \
    || { tail -n 40 "$work/ninja.log" >&2; exit 1; }
  if ! grep -q 'vfio-user-pci' <("$tree/build/qemu-system-x86_64" -device help 2>/dev/null); then
    log "the built QEMU has no vfio-user-pci device" >&2
    exit 1
  fi

  # Publish atomically: a build is complete only once .built exists.
  local staged="$work/dest"
  mkdir -p "$staged/bin"
  cp "$tree/build/qemu-system-x86_64" "$staged/bin/"
  printf '%s\n' "$got" > "$staged/version"
  touch "$staged/.built"
  rm -rf "$dest"
  mv "$staged" "$dest"
  rm -rf "$work"
  trap - EXIT
  log "built QEMU $got with vfio-user-pci in $dest"
}
build_qemu_vfio_user

# Fail here, with the name, rather than later in a test.
for bin in qemu-storage-daemon qemu-system-x86_64 qemu-img dpdk-testpmd xz cpio gzip; do
  command -v "$bin" >/dev/null || { log "missing after install: $bin" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { log "missing after install: /bin/busybox" >&2; exit 1; }
[[ -x $QEMU_VFIO_USER_DIR/bin/qemu-system-x86_64 ]] || { log "missing after install: $QEMU_VFIO_USER_DIR/bin/qemu-system-x86_64" >&2; exit 1; }
log "ready: kernel $kernel_ver in $root, QEMU with vfio-user-pci in $QEMU_VFIO_USER_DIR"
