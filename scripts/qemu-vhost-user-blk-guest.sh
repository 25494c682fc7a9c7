#!/usr/bin/env bash
# Boots a small Linux guest under QEMU (TCG) with a vhost-user-blk disk served on SOCKET, has the guest
# write and read back 1 MiB on /dev/vda, prints what it saw, and powers off.
#
#   scripts/qemu-vhost-user-blk-guest.sh /tmp/vub.sock [QUEUES]
#
# Needs what .ci/install-peers.sh installs (qemu-system-x86, busybox-static, cpio, the Debian kernel
# unpacked under /var/cache/outproc-peers). The guest is built once under ${OUTPROC_GUEST_DIR:-/tmp/outproc-guest}.
# WARNING: the guest overwrites the first MiB of the disk.
set -euo pipefail

socket=${1:?usage: $0 SOCKET [QUEUES]}
queues=${2:-1}
peers=${OUTPROC_PEERS_DIR:-/var/cache/outproc-peers}
work=${OUTPROC_GUEST_DIR:-/tmp/outproc-guest}

[ -S "$socket" ] || { echo "$0: no socket at $socket (start the back-end first)" >&2; exit 2; }
[ -r "$peers/kernel-version" ] || { echo "$0: no kernel in $peers (run .ci/install-peers.sh as root)" >&2; exit 2; }
for tool in qemu-system-x86_64 cpio gzip; do
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

set -x
exec qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
    -chardev socket,id=vub0,path="$socket" -device vhost-user-blk-pci,chardev=vub0,num-queues="$queues" \
    -kernel "$kernel" -initrd "$initramfs" -append "console=ttyS0 quiet panic=-1"
