package dev.outproc.examples.interop;

import dev.outproc.examples.net.VirtioNetDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.interop.Peers;
import dev.outproc.vhost.interop.Testpmd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DPDK testpmd ({@code net_virtio_user}, the socket client) as the front-end of outproc's vhost-user-net
 * example back-end, which runs in-process: testpmd's {@code txonly} packets reach the back-end in
 * {@code sink} mode, and in {@code loopback} mode testpmd's {@code io} forwarding (started with one
 * burst, {@code --tx-first}) receives its own packets back, over and over.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class NetBackendWithTestpmdIT {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    private static final int FRAME_BYTES = 64;
    /** testpmd's virtio-user rings hold at most this many packets the back-end may not have taken yet. */
    private static final long RING_SLACK = 1024;
    private static final Pattern TX_PPS = Pattern.compile("Tx-pps:\\s+(\\d+)");
    private static final Pattern RX_PPS = Pattern.compile("Rx-pps:\\s+(\\d+)");

    private record Backend(VirtioNetDevice device, VhostUserServer server) implements AutoCloseable {
        @Override
        public void close() {
            server.close();
        }
    }

    private static Backend serve(VirtioNetDevice.Mode mode, Path socket) throws IOException {
        VirtioNetDevice device = new VirtioNetDevice(mode, MAC, 1024);
        // One worker: the two rings of the queue pair share it (loopback moves frames between them).
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread.ofPlatform().daemon(true).name("net-backend").start(server::run);
        return new Backend(device, server);
    }

    private static long maxOf(Pattern pattern, String text) {
        Matcher m = pattern.matcher(text);
        long max = 0;
        while (m.find()) {
            max = Math.max(max, Long.parseLong(m.group(1)));
        }
        return max;
    }

    private static void awaitCount(java.util.function.LongSupplier count, long atLeast, long timeoutMillis)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (count.getAsLong() < atLeast && System.nanoTime() - deadline < 0) {
            Thread.sleep(100);
        }
    }

    @Test
    void txonlyPacketsShouldReachTheSink() throws Exception {
        Peers.require(Peers.TESTPMD);
        Path dir = Peers.workDirectory("NetBackendWithTestpmdIT-sink");
        Path socket = Peers.socketPath(dir, "net.sock");
        try (Backend backend = serve(VirtioNetDevice.Mode.SINK, socket)) {
            VirtioNetDevice.Counters c = backend.device().counters();
            long started;
            String output;
            long theirTx;
            try (Testpmd testpmd = Testpmd.frontEnd(socket, dir).forwardMode("txonly").packetBytes(FRAME_BYTES)
                    .name("testpmd-txonly").start()) {
                started = System.nanoTime();
                awaitCount(c::txPackets, 1, 20_000);
                Thread.sleep(3_000);
                testpmd.close();
                output = testpmd.output();
                theirTx = testpmd.lastTxPackets().orElse(-1);
                long millis = Math.max(1, (System.nanoTime() - started) / 1_000_000L);
                System.out.printf("testpmd txonly -> outproc vhost-user-net sink, %d B frames: testpmd sent %d, "
                                + "we counted %d (%s); peak %d pps (testpmd), average %d pps over the run%n", FRAME_BYTES, theirTx,
                        c.txPackets(), c, maxOf(TX_PPS, output), c.txPackets() * 1000 / millis);
                String context = c + "\n" + testpmd.describe();
                long ours = c.txPackets();
                assertTrue(theirTx > 0, "testpmd sent nothing: " + context);
                assertTrue(ours <= theirTx && theirTx - ours <= RING_SLACK,
                        "we counted " + ours + " of the " + theirTx + " packets testpmd sent: " + context);
                assertEquals(ours * FRAME_BYTES, c.txBytes(), "every frame is " + FRAME_BYTES + " bytes: " + context);
                assertEquals(0, c.txDropped(), "testpmd sends well-formed chains: " + context);
                assertEquals(0, c.rxPackets(), "a sink delivers nothing: " + context);
            }
        }
    }

    @Test
    void ioForwardingShouldReceiveItsPacketsBackThroughTheLoopback() throws Exception {
        Peers.require(Peers.TESTPMD);
        Path dir = Peers.workDirectory("NetBackendWithTestpmdIT-loopback");
        Path socket = Peers.socketPath(dir, "net.sock");
        try (Backend backend = serve(VirtioNetDevice.Mode.LOOPBACK, socket)) {
            VirtioNetDevice.Counters c = backend.device().counters();
            try (Testpmd testpmd = Testpmd.frontEnd(socket, dir).forwardMode("io").packetBytes(FRAME_BYTES)
                    .name("testpmd-io").args("--tx-first").start()) {
                long started = System.nanoTime();
                awaitCount(c::rxPackets, 1, 20_000);
                Thread.sleep(3_000);
                testpmd.close();
                String output = testpmd.output();
                long theirRx = testpmd.lastRxPackets().orElse(-1);
                long theirTx = testpmd.lastTxPackets().orElse(-1);
                long millis = Math.max(1, (System.nanoTime() - started) / 1_000_000L);
                System.out.printf("testpmd io (--tx-first) <-> outproc vhost-user-net loopback, %d B frames: testpmd "
                                + "sent %d, received %d; we looped back %d (%s); peak %d pps received (testpmd), "
                                + "average %d pps over the run%n", FRAME_BYTES, theirTx, theirRx, c.rxPackets(), c,
                        maxOf(RX_PPS, output), c.rxPackets() * 1000 / millis);
                String context = c + "\n" + testpmd.describe();
                assertTrue(theirRx > 0, "testpmd received nothing back: " + context);
                // Every packet testpmd received is one we put on its receive ring; it may not have taken the
                // last ones before it stopped.
                long ours = c.rxPackets();
                assertTrue(theirRx <= ours && ours - theirRx <= RING_SLACK,
                        "testpmd received " + theirRx + ", we delivered " + ours + ": " + context);
                assertTrue(c.txPackets() <= theirTx,
                        "we took " + c.txPackets() + " frames, testpmd sent " + theirTx + ": " + context);
                assertEquals(0, c.txDropped(), "testpmd sends well-formed chains: " + context);
            }
        }
    }
}
