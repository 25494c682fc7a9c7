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
        return serve(new VirtioNetDevice(mode, MAC, 1024), socket, 1);
    }

    private static Backend serve(VirtioNetDevice device, Path socket, int workers) throws IOException {
        // The device keeps both rings of a queue pair on one worker (loopback moves frames between them).
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(workers, false), socket);
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

    @Test
    void sourceFramesShouldReachTestpmdsRxonly() throws Exception {
        Peers.require(Peers.TESTPMD);
        Path dir = Peers.workDirectory("NetBackendWithTestpmdIT-source");
        Path socket = Peers.socketPath(dir, "net.sock");
        int frameBytes = 1500;
        try (Backend backend = serve(new VirtioNetDevice(VirtioNetDevice.Mode.SOURCE, MAC, 1024, 1, frameBytes), socket, 1)) {
            VirtioNetDevice.Counters c = backend.device().counters();
            try (Testpmd testpmd = Testpmd.frontEnd(socket, dir).forwardMode("rxonly").name("testpmd-rxonly").start()) {
                awaitCount(c::rxPackets, 1, 20_000);
                Thread.sleep(2_000);
                testpmd.close();
                long theirRx = testpmd.lastRxPackets().orElse(-1);
                String context = c + "\n" + testpmd.describe();
                System.out.printf("outproc vhost-user-net source of %d B frames -> testpmd rxonly: testpmd received %d,"
                        + " we sent %d (%s)%n", frameBytes, theirRx, c.rxPackets(), c);
                assertTrue(theirRx > 0, "testpmd received nothing: " + context);
                long ours = c.rxPackets();
                assertTrue(theirRx <= ours && ours - theirRx <= RING_SLACK,
                        "testpmd received " + theirRx + ", we delivered " + ours + ": " + context);
                assertEquals(ours * frameBytes, c.rxBytes(), "every frame is " + frameBytes + " bytes: " + context);
                assertEquals(0, c.rxDropped(), context);
            }
        }
    }

    @Test
    void twoQueuePairsShouldEachLoopTestpmdsStreamBack() throws Exception {
        Peers.require(Peers.TESTPMD);
        Path dir = Peers.workDirectory("NetBackendWithTestpmdIT-mq");
        Path socket = Peers.socketPath(dir, "net.sock");
        try (Backend backend = serve(new VirtioNetDevice(VirtioNetDevice.Mode.LOOPBACK, MAC, 1024, 2, 64), socket, 2)) {
            VirtioNetDevice.Counters c = backend.device().counters();
            try (Testpmd testpmd = Testpmd.frontEnd(socket, dir).queues(2).forwardMode("io").packetBytes(FRAME_BYTES)
                    .name("testpmd-io-mq").args("--rxq=2", "--txq=2", "--tx-first").start()) {
                long deadline = System.nanoTime() + 20_000_000_000L;
                while ((c.ofPair(0)[1] < 1000 || c.ofPair(1)[1] < 1000) && System.nanoTime() - deadline < 0) {
                    Thread.sleep(100);
                }
                testpmd.close();
                long theirRx = testpmd.lastRxPackets().orElse(-1);
                String context = c + " pair 0 " + java.util.Arrays.toString(c.ofPair(0)) + " pair 1 "
                        + java.util.Arrays.toString(c.ofPair(1)) + "\n" + testpmd.describe();
                System.out.println("testpmd io (--tx-first, 2 queues) <-> outproc vhost-user-net loopback, 2 queue pairs: "
                        + context.lines().findFirst().orElse(""));
                for (int p = 0; p < 2; p++) {
                    long[] pair = c.ofPair(p);
                    assertTrue(pair[1] >= 1000, "pair " + p + " looped back at least 1000 frames: " + context);
                    assertTrue(pair[1] <= pair[0] && pair[0] - pair[1] <= RING_SLACK,
                            "pair " + p + " returns the frames it takes (but those that met testpmd's stop): " + context);
                }
                assertTrue(theirRx > 0 && theirRx <= c.rxPackets(), "testpmd received " + theirRx + ": " + context);
                assertEquals(0, c.txDropped(), "testpmd sends well-formed chains: " + context);
            }
        }
    }
}
