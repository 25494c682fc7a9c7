/**
 * Test support for running outproc against real vhost-user peers on this machine and in CI.
 *
 * <ul>
 *   <li>{@link dev.outproc.vhost.interop.Peers} finds the peers; a missing one skips the test, or fails
 *       it when {@code -Dinterop.required=true} ({@code .ci/install-peers.sh} installs them all).</li>
 *   <li>{@link dev.outproc.vhost.interop.StorageDaemon}: qemu-storage-daemon as vhost-user-blk back-end,
 *       for tests of our front-end.</li>
 *   <li>{@link dev.outproc.vhost.interop.TinyGuest} and {@link dev.outproc.vhost.interop.QemuVm}: QEMU
 *       (TCG) booting a busybox guest as vhost-user front-end, for tests of our back-ends.</li>
 *   <li>{@link dev.outproc.vhost.interop.Testpmd}: DPDK testpmd as vhost-user-net front-end or back-end.</li>
 *   <li>{@link dev.outproc.vhost.interop.LoopbackNetDevice}: the smallest virtio-net device, every transmitted
 *       frame returned, so that QEMU's own virtio-net front-end can be tested against the library's back-end
 *       ({@code QemuVirtioNetIT}).</li>
 * </ul>
 *
 * <p>To test an outproc back-end with QEMU, start it listening on a socket from
 * {@link dev.outproc.vhost.interop.Peers#socketPath} and boot a guest against it, exactly as
 * {@code QemuStorageDaemonBlkIT} does with qemu-storage-daemon:
 * {@snippet :
 * Path dir = Peers.workDirectory("MyBackEndIT");
 * Path socket = Peers.socketPath(dir, "blk.sock");
 * // ... start the back-end listening on socket, on its own thread ...
 * TinyGuest guest = TinyGuest.builder("""
 *         wait_for_block /dev/vda || exit 1
 *         begin_output
 *         echo "sectors $(cat /sys/block/vda/size)"
 *         end_output
 *         """).modules(TinyGuest.BLK_MODULES).build();
 * QemuVm.Result run = QemuVm.builder(guest, dir).vhostUserBlk(socket, 1).run();
 * assertTrue(run.poweredOff(), run::toString);
 * String output = run.between();
 * }
 *
 * <p>Integration tests here are named {@code *IT}; failsafe runs them in {@code mvn verify}.
 */
package dev.outproc.vhost.interop;
