package dev.outproc.vhost.interop;

import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QEMU's own virtio-net ({@code -netdev vhost-user} with {@code virtio-net-pci}) against this library's
 * back-end, with a Linux guest: QEMU 7.2 sends SET_VRING_ENABLE before SET_FEATURES once the protocol
 * features are exchanged, which the back-end once refused (the guest then never transmitted). The guest
 * brings eth0 up, sends ARP requests that a loopback device returns, and counts its frames both ways.
 */
class QemuVirtioNetIT {
    @Test
    void aLinuxGuestShouldGetBackEveryFrameItSent() throws IOException {
        Peers.require(Peers.QEMU_SYSTEM);
        TinyGuest guest = TinyGuest.builder("""
                n=0
                while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
                [ -e /proc/sys/net/ipv6/conf/eth0/disable_ipv6 ] && echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6
                ip link set eth0 up
                ip addr add 10.0.2.15/24 dev eth0
                ping -c 3 -W 1 10.0.2.2 > /dev/null 2>&1
                sleep 1
                begin_output
                echo "tx $(cat /sys/class/net/eth0/statistics/tx_packets)"
                echo "rx $(cat /sys/class/net/eth0/statistics/rx_packets)"
                end_output
                """)
                .modules(TinyGuest.NET_MODULES)
                .build();
        Path dir = Peers.workDirectory("QemuVirtioNetIT");
        Path socket = Peers.socketPath(dir, "outproc-net.sock");
        LoopbackNetDevice device = new LoopbackNetDevice();
        try (VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket)) {
            Thread.ofPlatform().daemon(true).name("net-it-server").start(server::run);
            QemuVm.Result run = QemuVm.builder(guest, dir).vhostUserNet(socket).run();
            System.out.printf("QEMU virtio-net guest -> outproc vhost-user loopback: %d frame(s) looped, %d dropped, "
                    + "boot to poweroff %d ms%n", device.looped.get(), device.dropped.get(), run.elapsed().toMillis());
            assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + run);
            List<String> lines = run.between().lines().map(String::strip).toList();
            assertEquals(2, lines.size(), () -> "guest output lines; " + run);
            long tx = Long.parseLong(lines.get(0).substring("tx ".length()));
            long rx = Long.parseLong(lines.get(1).substring("rx ".length()));
            assertTrue(tx >= 3, () -> "the guest transmitted (ARP requests for the ping), tx=" + tx + "; " + run);
            assertEquals(tx, rx, () -> "every frame sent came back; " + run);
            assertEquals(0, device.dropped.get(), "no frame dropped");
        }
    }
}
