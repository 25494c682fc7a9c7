#!/usr/bin/env bash
# Builds (once) the small Linux guest the QEMU scripts boot: the Debian kernel that .ci/install-peers.sh
# unpacks under /var/cache/outproc-peers and an initramfs of busybox-static and the virtio modules whose init
# writes and reads back 1 MiB on /dev/vda (overwriting the start of the disk), prints what it saw and
# powers off. Prints two lines: the kernel's path and the initramfs's path.
#
#   scripts/guest-initramfs.sh
#
# The guest is kept under ${OUTPROC_GUEST_DIR:-/tmp/outproc-guest}.
set -euo pipefail

peers=${OUTPROC_PEERS_DIR:-/var/cache/outproc-peers}
work=${OUTPROC_GUEST_DIR:-/tmp/outproc-guest}

[ -r "$peers/kernel-version" ] || { echo "$0: no kernel in $peers (run .ci/install-peers.sh as root)" >&2; exit 2; }
for tool in cpio gzip; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing (run .ci/install-peers.sh as root)" >&2; exit 2; }
done
busybox=/bin/busybox   # busybox-static's binary: the guest has no dynamic loader
[ -x "$busybox" ] || { echo "$0: $busybox is missing (busybox-static)" >&2; exit 2; }

kver=$(cat "$peers/kernel-version")
kernel="$peers/linux-image-$kver/boot/vmlinuz-$kver"
moddir="$peers/linux-image-$kver/lib/modules/$kver/kernel"
initramfs="$work/initramfs-$kver.cpio.gz"

if [ ! -s "$initramfs" ]; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules}
    cp "$busybox" "$root/bin/busybox"
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
        ko=$(find "$moddir" -name "$m.ko*" | head -n 1)
        [ -n "$ko" ] || { echo "$0: module $m not found under $moddir" >&2; exit 2; }
        case "$ko" in
            *.xz) xz -dc "$ko" > "$root/lib/modules/$m.ko" ;;
            *) cp "$ko" "$root/lib/modules/$m.ko" ;;
        esac
    done
    cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod /lib/modules/$m.ko
done
n=0; while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
if [ -b /dev/vda ]; then
    echo "guest: /dev/vda has $(cat /sys/block/vda/size) sectors, $(ls /sys/block/vda/mq | wc -l) queue(s)"
    dd if=/dev/urandom of=/tmp/pattern bs=4096 count=256 2>/dev/null
    dd if=/tmp/pattern of=/dev/vda bs=4096 oflag=direct conv=fsync 2>/dev/null
    dd if=/dev/vda of=/tmp/back bs=4096 count=256 iflag=direct 2>/dev/null
    if cmp -s /tmp/pattern /tmp/back; then echo "guest: wrote and read back 1 MiB: identical"; else echo "guest: READ-BACK DIFFERS"; fi
    echo "guest: sha256 $(sha256sum < /tmp/back)"
else
    echo "guest: no /dev/vda"
fi
poweroff -f
INIT
    chmod +x "$root/init"
    mkdir -p "$work"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initramfs.tmp"
    mv "$initramfs.tmp" "$initramfs"
fi

printf '%s\n' "$kernel" "$initramfs"
