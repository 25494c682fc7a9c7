package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The DPDK testpmd launcher works in both roles: testpmd front-end ({@code net_virtio_user},
 * {@code txonly}) sends packets through vhost-user to testpmd back-end ({@code net_vhost},
 * {@code rxonly}), and QEMU's virtio-net guest reaches a testpmd back-end in {@code icmpecho} mode.
 */
class TestpmdIT {

    @Test
    void frontEndPacketsReachTheBackEnd() throws IOException {
        Path dir = Peers.workDirectory("TestpmdIT-pair");
        Path socket = Peers.socketPath(dir, "net.sock");
        try (Testpmd backEnd = Testpmd.backEnd(socket, dir).start();
             Testpmd frontEnd = Testpmd.frontEnd(socket, dir).start()) {
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (backEnd.lastRxPackets().orElse(0) == 0 && System.nanoTime() - deadline < 0) {
                PeerProcess.sleepMillis(200);
            }
            frontEnd.close();
            backEnd.close();
            long rx = backEnd.lastRxPackets().orElse(0);
            long tx = frontEnd.lastTxPackets().orElse(0);
            System.out.printf("testpmd virtio-user -> vhost: front-end sent %d, back-end received %d packets%n", tx, rx);
            assertTrue(rx > 0, () -> "back-end received nothing:\n" + backEnd.describe() + "\n" + frontEnd.describe());
            assertTrue(tx > 0, () -> "front-end sent nothing:\n" + frontEnd.describe());
        }
    }

    @Test
    void guestPingsTestpmdThroughVhostUserNet() throws IOException {
        Path dir = Peers.workDirectory("TestpmdIT-guest");
        Path socket = Peers.socketPath(dir, "net.sock");
        TinyGuest guest = TinyGuest.builder("""
                ip link set eth0 up || exit 1
                ip addr add 192.0.2.2/24 dev eth0
                begin_output
                ping -c 3 -A -W 5 192.0.2.1 | grep -c 'bytes from'
                end_output
                """).modules(TinyGuest.NET_MODULES).build();
        try (Testpmd backEnd = Testpmd.backEnd(socket, dir).forwardMode("icmpecho").cpu(1).start()) {
            QemuVm.Result run = QemuVm.builder(guest, dir).vhostUserNet(socket).run();
            System.out.printf("tiny guest with vhost-user-net (testpmd icmpecho), 3 pings, boot to poweroff: %d ms%n",
                    run.elapsed().toMillis());
            assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + run + "\n" + backEnd.describe());
            String replies = run.between().strip();
            assertEquals("3", replies, () -> "echo replies seen by the guest; " + run + "\n" + backEnd.describe());
        }
    }
}
