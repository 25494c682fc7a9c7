#!/usr/bin/env bash
# Boots a small Linux guest under QEMU 10.1+ (TCG) with a virtio-blk PCI function served over vfio-user on
# SOCKET (vfio-user-virtio-blk), has the guest write and read back 1 MiB on /dev/vda, prints what it saw, and
# powers off.
#
#   scripts/qemu-vfio-user-blk-guest.sh /tmp/vfio-blk.sock
#
# Needs the QEMU with the vfio-user client that .ci/install-peers.sh builds (override with OUTPROC_QEMU) and the
# guest of scripts/guest-initramfs.sh. WARNING: the guest overwrites the first MiB of the disk.
set -euo pipefail

socket=${1:?usage: $0 SOCKET}
qemu=${OUTPROC_QEMU:-/var/cache/outproc-peers/qemu-vfio-user/bin/qemu-system-x86_64}
[ -S "$socket" ] || { echo "$0: no socket at $socket (start vfio-user-virtio-blk first)" >&2; exit 2; }
[ -x "$qemu" ] || { echo "$0: no QEMU with vfio-user-pci at $qemu (run .ci/install-peers.sh as root, or set OUTPROC_QEMU)" >&2; exit 2; }
guest=$("$(dirname "$0")/guest-initramfs.sh")
kernel=$(sed -n 1p <<<"$guest")
initramfs=$(sed -n 2p <<<"$guest")

set -x
exec "$qemu" -L /usr/share/seabios -L /usr/share/qemu -accel tcg -m 256 -smp 1 -nodefaults -no-user-config \
    -nographic -serial stdio -no-reboot \
    -object memory-backend-memfd,id=mem,size=256M,share=on -machine pc,memory-backend=mem \
    -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$socket\",\"type\":\"unix\"}}" \
    -kernel "$kernel" -initrd "$initramfs" -append "console=ttyS0 quiet panic=-1"
