package dev.outproc.examples.interop;

import dev.outproc.examples.net.VirtioNetDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.interop.Peers;
import dev.outproc.vhost.interop.QemuVm;
import dev.outproc.vhost.interop.TinyGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QEMU (TCG) with its own virtio-net ({@code -netdev vhost-user} and {@code virtio-net-pci}) as the
 * front-end of outproc's vhost-user-net example back-end in loopback mode: a small Linux guest brings
 * {@code eth0} up, pings an address whose neighbour entry points at its own MAC (so every echo request
 * is a frame the loopback returns), and reports its interface counters; every frame it sent must have
 * come back. QEMU sends SET_VRING_ENABLE before SET_FEATURES here, unlike DPDK's virtio-user.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class NetBackendWithQemuIT {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    private static final int PINGS = 10;

    @Test
    void guestFramesShouldComeBackThroughOurLoopback() throws Exception {
        Peers.require(Peers.QEMU_SYSTEM);
        // IPv6 is off so that no router solicitation leaves after the counters settle. The neighbour entry
        // makes the echo requests go out at once (no ARP); the loopback returns them to eth0, whose stack
        // drops them (not its address) after the driver counted them.
        TinyGuest guest = TinyGuest.builder("""
                n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
                [ -e /sys/class/net/eth0 ] || { echo "outproc-guest: no eth0"; exit 1; }
                echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6
                ip link set eth0 address 52:54:00:12:34:56
                ip link set eth0 up
                ip addr add 10.0.2.15/24 dev eth0
                arp -i eth0 -s 10.0.2.2 52:54:00:12:34:56 || echo "outproc-guest: arp -s failed"
                ping -c %d -i 0.2 -W 1 10.0.2.2 >/dev/null 2>&1
                s=/sys/class/net/eth0/statistics
                n=0; while [ "$(cat $s/rx_packets)" != "$(cat $s/tx_packets)" ] && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
                begin_output
                echo "tx $(cat $s/tx_packets)"
                echo "rx $(cat $s/rx_packets)"
                echo "rx_errors $(cat $s/rx_errors)"
                end_output
                """.formatted(PINGS))
                .modules(TinyGuest.NET_MODULES)
                .build();
        Path dir = Peers.workDirectory("NetBackendWithQemuIT");
        Path socket = Peers.socketPath(dir, "outproc-net.sock");
        VirtioNetDevice device = new VirtioNetDevice(VirtioNetDevice.Mode.LOOPBACK, MAC, 256);
        // One worker: loopback moves frames between the two rings of the queue pair.
        try (VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket)) {
            Thread.ofPlatform().daemon(true).name("net-qemu-it-server").start(server::run);
            QemuVm.Result run = QemuVm.builder(guest, dir).vhostUserNet(socket).run();
            String context = run + "; device " + device.counters();
            System.out.printf("QEMU guest -> outproc vhost-user-net loopback: %s, boot to poweroff %d ms%n",
                    device.counters(), run.elapsed().toMillis());
            assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + context);
            List<String> lines = run.between().lines().map(String::strip).toList();
            assertEquals(3, lines.size(), () -> "guest output lines; " + context);
            long tx = Long.parseLong(lines.get(0).substring("tx ".length()));
            long rx = Long.parseLong(lines.get(1).substring("rx ".length()));
            assertTrue(tx >= PINGS, () -> "the guest transmitted its pings; " + context);
            assertEquals(tx, rx, () -> "every frame the guest sent came back; " + context);
            assertEquals("rx_errors 0", lines.get(2), () -> context);
            assertEquals(tx, device.counters().txPackets(), () -> "the device saw the guest's frames; " + context);
            assertEquals(0, device.counters().txDropped() + device.counters().rxDropped(), () -> context);
        }
    }
}
