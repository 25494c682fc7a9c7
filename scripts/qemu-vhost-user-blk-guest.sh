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
[ -S "$socket" ] || { echo "$0: no socket at $socket (start the back-end first)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "$0: qemu-system-x86_64 is missing (run .ci/install-peers.sh as root)" >&2; exit 2; }
guest=$("$(dirname "$0")/guest-initramfs.sh")
kernel=$(sed -n 1p <<<"$guest")
initramfs=$(sed -n 2p <<<"$guest")

set -x
exec qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
    -chardev socket,id=vub0,path="$socket" -device vhost-user-blk-pci,chardev=vub0,num-queues="$queues" \
    -kernel "$kernel" -initrd "$initramfs" -append "console=ttyS0 quiet panic=-1"
