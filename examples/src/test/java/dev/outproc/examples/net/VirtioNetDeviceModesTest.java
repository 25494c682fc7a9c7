package dev.outproc.examples.net;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.testkit.DeviceTestBench;
import dev.outproc.vhost.testkit.TestQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The source and sink modes and multi-queue (VIRTIO_NET_F_MQ with its control queue), in-process. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class VirtioNetDeviceModesTest {
    private static final long BASE = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX,
            VirtioFeature.INDIRECT_DESC) | (1L << VirtioNetDevice.F_MAC) | (1L << VirtioNetDevice.F_STATUS)
            | (1L << VirtioNetDevice.F_MRG_RXBUF);
    private static final long MQ = BASE | (1L << VirtioNetDevice.F_MQ) | (1L << VirtioNetDevice.F_CTRL_VQ);
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

    @TempDir
    Path dir;

    private static VhostUserServer serve(VirtioNetDevice device, Path socket, int workers, boolean busyPoll)
            throws Exception {
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(workers, busyPoll), socket);
        Thread.ofPlatform().daemon(true).name("net-server").start(server::run);
        return server;
    }

    private static byte[] packet(byte[] frame) {
        byte[] p = new byte[12 + frame.length];
        System.arraycopy(frame, 0, p, 12, frame.length);
        return p;
    }

    private static long word(byte[] b, int at) {
        return ByteBuffer.wrap(b, at, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void sourceShouldFillEveryPostedBufferWithAFrameOfTheGivenSize() throws Exception {
        for (boolean busyPoll : new boolean[] {false, true}) {
            int frameBytes = 100;
            VirtioNetDevice device = new VirtioNetDevice(VirtioNetDevice.Mode.SOURCE, MAC, 256, 1, frameBytes);
            Path socket = dir.resolve("source-" + busyPoll + ".sock");
            try (VhostUserServer server = serve(device, socket, 1, busyPoll);
                 DeviceTestBench bench = DeviceTestBench.connect(socket, BASE)) {
                TestQueue rx = bench.startQueue(0, 64, 4096);
                bench.startQueue(1, 64, 4096);
                for (int round = 0; round < 3; round++) {
                    for (int i = 0; i < 10; i++) {
                        rx.post(new byte[0], 2048);
                    }
                    rx.kick();
                    for (int i = 0; i < 10; i++) {
                        TestQueue.Used u = rx.await(10_000);
                        assertEquals(12 + frameBytes, u.writtenBytes(), "header and frame, busyPoll=" + busyPoll);
                        byte[] w = u.written();
                        assertEquals(1, w[10] | w[11] << 8, "num_buffers");
                        for (int b = 0; b < 10; b++) {
                            assertEquals(0, w[b], "no offloads in the header");
                        }
                        byte[] frame = Arrays.copyOfRange(w, 12, 12 + frameBytes);
                        for (int b = 0; b < 6; b++) {
                            assertEquals((byte) 0xff, frame[b], "broadcast destination");
                        }
                        assertArrayEquals(MAC, Arrays.copyOfRange(frame, 6, 12), "our MAC as the source");
                        assertEquals((byte) 0x88, frame[12]);
                        assertEquals((byte) 0xb5, frame[13]);
                        for (int b = 14; b < frameBytes; b++) {
                            assertEquals((byte) b, frame[b], "payload byte " + b);
                        }
                    }
                    assertNull(rx.poll(50), "one frame per posted buffer");
                }
                assertEquals(30, device.counters().rxPackets());
                assertEquals(30L * frameBytes, device.counters().rxBytes());
                assertEquals(0, device.counters().rxDropped());
            }
        }
    }

    @Test
    void sourceShouldSpreadALargeFrameOverMergedBuffers() throws Exception {
        VirtioNetDevice device = new VirtioNetDevice(VirtioNetDevice.Mode.SOURCE, MAC, 256, 1, 1500);
        Path socket = dir.resolve("source-mrg.sock");
        try (VhostUserServer server = serve(device, socket, 1, false);
             DeviceTestBench bench = DeviceTestBench.connect(socket, BASE)) {
            TestQueue rx = bench.startQueue(0, 64, 4096);
            bench.startQueue(1, 64, 4096);
            for (int i = 0; i < 5; i++) {
                rx.post(new byte[0], 1000);
            }
            rx.kick();
            TestQueue.Used first = rx.await(10_000);
            assertEquals(2, first.written()[10] | first.written()[11] << 8, "1512 bytes in 1000-byte buffers");
            assertEquals(1000, first.writtenBytes());
            assertEquals(512, rx.await(10_000).writtenBytes());
            TestQueue.Used third = rx.await(10_000);
            assertEquals(2, third.written()[10], "the second frame starts in the third buffer");
            assertEquals(512, rx.await(10_000).writtenBytes());
            assertNull(rx.poll(50), "the fifth buffer alone is too small and stays posted");
            assertEquals(2, device.counters().rxPackets());
        }
    }

    @Test
    void sinkShouldReadEveryFramesBytes() throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        VirtioNetDevice device = new VirtioNetDevice(VirtioNetDevice.Mode.SINK, MAC, 256);
        Path socket = dir.resolve("sink.sock");
        try (VhostUserServer server = serve(device, socket, 1, false);
             DeviceTestBench bench = DeviceTestBench.connect(socket, BASE)) {
            bench.startQueue(0, 64, 4096);
            TestQueue tx = bench.startQueue(1, 64, 4096);
            long expected = 0;
            for (int i = 0; i < 40; i++) {
                byte[] frame = new byte[14 + random.nextInt(1500)];
                random.nextBytes(frame);
                expected ^= word(frame, 0) ^ word(frame, frame.length - 8);
                tx.post(packet(frame), 1 + random.nextInt(3), 0);
                tx.kickAndAwait();
            }
            assertEquals(40, device.counters().txPackets(), "seed=" + seed);
            assertEquals(expected, device.counters().sinkFingerprint(),
                    "the first and last eight bytes of every frame were read; seed=" + seed);
        }
    }

    /** Sends a control command; {@return the ack byte} */
    private static int control(TestQueue ctrl, int cls, int command, byte... data) throws Exception {
        byte[] c = new byte[2 + data.length];
        c[0] = (byte) cls;
        c[1] = (byte) command;
        System.arraycopy(data, 0, c, 2, data.length);
        ctrl.post(c, 1);
        TestQueue.Used u = ctrl.kickAndAwait();
        assertEquals(1, u.writtenBytes(), "one ack byte");
        return u.written()[0];
    }

    @Test
    void multiQueueShouldLoopEachPairBackOnItselfAndAnswerTheControlQueue() throws Exception {
        for (boolean busyPoll : new boolean[] {false, true}) {
            VirtioNetDevice device = new VirtioNetDevice(VirtioNetDevice.Mode.LOOPBACK, MAC, 256, 3, 64);
            assertEquals(7, device.queueCount(), "3 pairs and the control queue");
            assertEquals(MQ, device.features() & MQ);
            Path socket = dir.resolve("mq-" + busyPoll + ".sock");
            try (VhostUserServer server = serve(device, socket, 3, busyPoll);
                 DeviceTestBench bench = DeviceTestBench.connect(socket, MQ)) {
                assertEquals(MQ, bench.features() & MQ);
                byte[] config = bench.config(0, VirtioNetDevice.CONFIG_SIZE);
                assertEquals(3, config[8] | config[9] << 8, "max_virtqueue_pairs");
                TestQueue[] rx = new TestQueue[3];
                TestQueue[] tx = new TestQueue[3];
                for (int p = 0; p < 3; p++) {
                    rx[p] = bench.startQueue(2 * p, 64, 4096);
                    tx[p] = bench.startQueue(2 * p + 1, 64, 4096);
                }
                TestQueue ctrl = bench.startQueue(6, 16, 64);
                assertEquals(NetControlQueue.OK, control(ctrl, NetControlQueue.CLASS_MQ, NetControlQueue.MQ_VQ_PAIRS_SET, (byte) 3, (byte) 0));
                assertEquals(3, device.activeQueuePairs());
                assertEquals(NetControlQueue.ERR, control(ctrl, NetControlQueue.CLASS_MQ, NetControlQueue.MQ_VQ_PAIRS_SET, (byte) 4, (byte) 0),
                        "more pairs than offered");
                assertEquals(NetControlQueue.ERR, control(ctrl, NetControlQueue.CLASS_MQ, NetControlQueue.MQ_VQ_PAIRS_SET, (byte) 0, (byte) 0),
                        "zero pairs");
                assertEquals(NetControlQueue.ERR, control(ctrl, NetControlQueue.CLASS_MQ, NetControlQueue.MQ_VQ_PAIRS_SET, (byte) 2),
                        "a truncated command");
                assertEquals(NetControlQueue.ERR, control(ctrl, 0, 0, (byte) 1), "VIRTIO_NET_CTRL_RX was not offered");
                assertEquals(3, device.activeQueuePairs(), "refused commands change nothing");
                for (int p = 0; p < 3; p++) {
                    for (int q = 0; q < 3; q++) {
                        rx[q].post(new byte[0], 2048);
                        rx[q].kick();
                    }
                    byte[] frame = new byte[60];
                    Arrays.fill(frame, (byte) (p + 1));
                    tx[p].post(packet(frame), 1, 0);
                    tx[p].kickAndAwait();
                    TestQueue.Used got = rx[p].await(10_000);
                    assertArrayEquals(frame, Arrays.copyOfRange(got.written(), 12, 72), "pair " + p + " loops back on itself");
                    for (int q = 0; q < 3; q++) {
                        if (q != p) {
                            assertNull(rx[q].poll(20), "pair " + q + " gets nothing of pair " + p + "'s frame");
                        }
                    }
                    long[] counts = device.counters().ofPair(p);
                    assertEquals(1, counts[0], "pair " + p + " tx");
                    assertEquals(1, counts[1], "pair " + p + " rx");
                    assertEquals(0, counts[2], "pair " + p + " dropped");
                }
                assertNotNull(device.counters().toString());
            }
        }
    }

    @Test
    void theDeviceShouldRefuseBadSizesAndTheModeParserBadNames() {
        assertThrows(IllegalArgumentException.class, () -> new VirtioNetDevice(VirtioNetDevice.Mode.SOURCE, MAC, 256, 1, 13));
        assertThrows(IllegalArgumentException.class,
                () -> new VirtioNetDevice(VirtioNetDevice.Mode.SOURCE, MAC, 256, 1, VirtioNetDevice.MAX_FRAME_BYTES + 1));
        assertThrows(IllegalArgumentException.class, () -> new VirtioNetDevice(VirtioNetDevice.Mode.SINK, MAC, 256, 0, 64));
        assertThrows(IllegalArgumentException.class,
                () -> new VirtioNetDevice(VirtioNetDevice.Mode.SINK, MAC, 256, VirtioNetDevice.MAX_QUEUE_PAIRS + 1, 64));
        assertEquals(VirtioNetDevice.Mode.SOURCE, VirtioNetDevice.Mode.parse("Source"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VirtioNetDevice.Mode.parse("mirror"));
        assertTrue(e.getMessage().contains("mirror"), e.getMessage());
    }
}
