#!/usr/bin/env bash
# Builds (once) the small Linux guest the QEMU scripts boot: the Debian kernel that .ci/install-peers.sh
# unpacks under /var/cache/outproc-peers and an initramfs of busybox-static and the virtio modules. Its init
# exercises each virtio device it finds, prints what it saw and powers off:
#   - a disk (/dev/vda): writes and reads back 1 MiB (overwriting the start of the disk);
#   - an entropy device (virtio-rng): reads 64 KiB from /dev/hwrng;
#   - a network device (eth0): brings it up, pings 10 times through a back-end that loops frames back
#     (vhost-user-net --mode loopback) and prints the packet counters.
# Prints two lines: the kernel's path (VMLINUZ in the README) and the initramfs's path (INITRAMFS).
#
#   scripts/guest-initramfs.sh
#
# The guest is kept under ${OUTPROC_GUEST_DIR:-/tmp/outproc-guest}, named after this script's contents, so
# a changed script builds a new one.
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
initramfs="$work/initramfs-$kver-$(sha256sum "$0" | cut -c1-12).cpio.gz"

if [ ! -s "$initramfs" ]; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules}
    cp "$busybox" "$root/bin/busybox"
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk virtio-rng failover net_failover virtio_net; do
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
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk virtio-rng failover net_failover virtio_net; do
    insmod /lib/modules/$m.ko
done
# Wait (up to 5 s) until every virtio PCI function has its driver and the driver its device node.
want=$(grep -l 0x1af4 /sys/bus/pci/devices/*/vendor 2>/dev/null | wc -l)
ready() {
    [ "$(ls -d /sys/bus/virtio/devices/virtio* 2>/dev/null | wc -l)" -ge "$want" ] || return 1
    for d in /sys/bus/virtio/devices/virtio*; do
        [ -e "$d/driver" ] || { [ "$want" = 0 ] && return 0; return 1; }
        case $(basename "$(readlink "$d/driver")") in
            virtio_blk) [ -b /dev/vda ] || return 1 ;;
            virtio_net) [ -e /sys/class/net/eth0 ] || return 1 ;;
            virtio_rng) grep -q virtio /sys/class/misc/hw_random/rng_current 2>/dev/null || return 1 ;;
        esac
    done
}
n=0; while ! ready && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
found=0
if grep -q virtio /sys/class/misc/hw_random/rng_current 2>/dev/null; then
    found=1
    dd if=/dev/hwrng of=/tmp/random bs=4096 count=16 2>/dev/null
    echo "guest: read $(wc -c < /tmp/random) bytes from /dev/hwrng ($(cat /sys/class/misc/hw_random/rng_current)), first 16: $(od -An -tx1 -N16 /tmp/random | tr -d ' ')"
fi
if [ -e /sys/class/net/eth0 ]; then
    found=1
    echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6
    ip link set eth0 address 52:54:00:12:34:56
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    arp -i eth0 -s 10.0.2.2 52:54:00:12:34:56   # the loopback returns our own frames: address them to us
    ping -c 10 -i 0.2 -W 1 10.0.2.2 >/dev/null 2>&1
    sleep 1
    echo "guest: eth0 sent $(cat /sys/class/net/eth0/statistics/tx_packets) and received $(cat /sys/class/net/eth0/statistics/rx_packets) packets"
fi
if [ -b /dev/vda ]; then
    found=1
    echo "guest: /dev/vda has $(cat /sys/block/vda/size) sectors, $(ls /sys/block/vda/mq | wc -l) queue(s)"
    dd if=/dev/urandom of=/tmp/pattern bs=4096 count=256 2>/dev/null
    dd if=/tmp/pattern of=/dev/vda bs=4096 oflag=direct conv=fsync 2>/dev/null
    dd if=/dev/vda of=/tmp/back bs=4096 count=256 iflag=direct 2>/dev/null
    if cmp -s /tmp/pattern /tmp/back; then echo "guest: wrote and read back 1 MiB: identical"; else echo "guest: READ-BACK DIFFERS"; fi
    echo "guest: sha256 $(sha256sum < /tmp/back)"
fi
[ $found = 1 ] || echo "guest: no virtio disk, entropy or network device"
poweroff -f
INIT
    chmod +x "$root/init"
    mkdir -p "$work"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initramfs.tmp"
    mv "$initramfs.tmp" "$initramfs"
fi

printf '%s\n' "$kernel" "$initramfs"
