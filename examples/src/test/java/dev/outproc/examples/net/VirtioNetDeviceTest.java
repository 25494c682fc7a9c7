package dev.outproc.examples.net;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.testkit.TestQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Our front-end (receive and transmit split rings) against the virtio-net example device, in-process. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class VirtioNetDeviceTest {
    private static final long ALL = VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX,
            VirtioFeature.INDIRECT_DESC) | (1L << VirtioNetDevice.F_MAC) | (1L << VirtioNetDevice.F_STATUS)
            | (1L << VirtioNetDevice.F_MRG_RXBUF);
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

    @TempDir
    Path dir;

    private VirtioNetDevice device;

    private VhostUserServer serve(Path socket, VirtioNetDevice.Mode mode) throws Exception {
        device = new VirtioNetDevice(mode, MAC, 256);
        // One worker: loopback moves frames between the two rings on it.
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread.ofPlatform().daemon(true).name("net-server").start(server::run);
        return server;
    }

    private static byte[] packet(int headerBytes, byte[] frame) {
        byte[] p = new byte[headerBytes + frame.length];
        System.arraycopy(frame, 0, p, headerBytes, frame.length);
        return p;
    }

    private static byte[] frame(SplittableRandom random, int length) {
        byte[] f = new byte[length];
        random.nextBytes(f);
        return f;
    }

    /** Reads one received frame: the chains {@code num_buffers} says, the header stripped. */
    private static byte[] receiveFrame(NetTestDriver d, int headerBytes, String context) throws Exception {
        TestQueue.Used first = d.pollRx(10_000);
        assertNotNull(first, "no frame received; " + context);
        assertTrue(first.writtenBytes() >= headerBytes, "used length " + first.writtenBytes() + " below the header; " + context);
        byte[] head = first.written();
        int numBuffers = headerBytes == 12 ? (head[10] & 0xff) | (head[11] & 0xff) << 8 : 1;
        assertTrue(numBuffers >= 1, "num_buffers=" + numBuffers + "; " + context);
        for (int i = 0; i < 10; i++) {
            assertEquals(0, head[i], "header byte " + i + " (no offloads); " + context);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(head, headerBytes, head.length - headerBytes);
        for (int i = 1; i < numBuffers; i++) {
            TestQueue.Used next = d.pollRx(10_000);
            assertNotNull(next, "buffer " + i + " of num_buffers=" + numBuffers + " missing; " + context);
            out.write(next.written());
        }
        return out.toByteArray();
    }

    @ParameterizedTest(name = "version1={0} mrgRxbuf={1} seed+={2}")
    @CsvSource({"true, true, 1", "true, false, 2", "false, true, 3", "false, false, 4"})
    void loopbackShouldDeliverEveryFrameByteForByte(boolean version1, boolean mrg, long seedOffset) throws Exception {
        long seed = System.nanoTime() + seedOffset;
        SplittableRandom random = new SplittableRandom(seed);
        long wanted = ALL & ~(version1 ? 0 : VirtioFeature.VERSION_1.mask()) & ~(mrg ? 0 : 1L << VirtioNetDevice.F_MRG_RXBUF);
        int headerBytes = version1 || mrg ? 12 : 10;
        Path socket = dir.resolve("net.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.LOOPBACK);
             NetTestDriver d = NetTestDriver.start(socket, wanted)) {
            assertEquals(headerBytes, VirtioNetDevice.headerBytes(d.acked), "seed=" + seed);
            // Mergeable: 2 KiB buffers, so frames above them span several; otherwise one big buffer per frame.
            int rxBufferBytes = mrg ? 2048 : 65_562;
            long bytes = 0;
            for (int i = 0; i < 60; i++) {
                int length = i % 10 == 9 ? 2048 + random.nextInt(9000) : 14 + random.nextInt(1501);
                byte[] f = frame(random, length);
                int needed = mrg ? (headerBytes + length + rxBufferBytes - 1) / rxBufferBytes : 1;
                d.postRx(needed, rxBufferBytes);
                assertEquals(0, d.send(packet(headerBytes, f), 1 + random.nextInt(3), 0), "seed=" + seed);
                String context = "seed=" + seed + " frame " + i + " length " + length;
                assertArrayEquals(f, receiveFrame(d, headerBytes, context), context);
                bytes += length;
            }
            assertNull(d.pollRx(50), "no extra used receive chains; seed=" + seed);
            assertEquals(60, device.counters().rxPackets(), device.counters() + " seed=" + seed);
            assertEquals(60, device.counters().txPackets(), device.counters() + " seed=" + seed);
            assertEquals(bytes, device.counters().rxBytes(), "seed=" + seed);
            assertEquals(bytes, device.counters().txBytes(), "seed=" + seed);
            assertEquals(0, device.counters().rxDropped() + device.counters().txDropped(), "seed=" + seed);
        }
    }

    @Test
    void numBuffersShouldCountTheChainsOfAMergedFrame() throws Exception {
        Path socket = dir.resolve("mrg.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.LOOPBACK);
             NetTestDriver d = NetTestDriver.start(socket, ALL)) {
            d.postRx(8, 1000);
            byte[] f = frame(new SplittableRandom(7), 4000);
            d.send(packet(12, f), 1, 0);
            // 12 + 4000 bytes in 1000-byte buffers: 5 chains, the first four full, the last 12 bytes.
            TestQueue.Used first = d.pollRx(10_000);
            assertNotNull(first);
            byte[] head = first.written();
            assertEquals(5, (head[10] & 0xff) | (head[11] & 0xff) << 8, "num_buffers");
            assertEquals(1000, first.writtenBytes());
            long[] lengths = new long[4];
            for (int i = 0; i < 4; i++) {
                lengths[i] = d.pollRx(10_000).writtenBytes();
            }
            assertArrayEquals(new long[] {1000, 1000, 1000, 12}, lengths);
            assertNull(d.pollRx(50), "three buffers stay posted");
        }
    }

    @Test
    void framesWithoutReceiveBuffersShouldBeDroppedAndCounted() throws Exception {
        Path socket = dir.resolve("drop.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.LOOPBACK);
             NetTestDriver d = NetTestDriver.start(socket, ALL)) {
            SplittableRandom random = new SplittableRandom(11);
            for (int i = 0; i < 5; i++) {
                assertEquals(0, d.send(packet(12, frame(random, 60)), 1, 0));
            }
            assertEquals(5, device.counters().rxDropped(), device.counters().toString());
            assertEquals(5, device.counters().txPackets(), device.counters().toString());
            // Too few buffers for a merged frame: dropped, and the buffers serve the next frame.
            d.postRx(1, 1024);
            d.send(packet(12, frame(random, 3000)), 1, 0);
            assertEquals(6, device.counters().rxDropped(), device.counters().toString());
            assertNull(d.pollRx(50), "the lone buffer is not returned for a dropped frame");
            byte[] f = frame(random, 100);
            d.send(packet(12, f), 1, 0);
            assertArrayEquals(f, receiveFrame(d, 12, "after drops"));
            assertEquals(1, device.counters().rxPackets(), device.counters().toString());
        }
    }

    @Test
    void hostileTransmitChainsShouldBeDroppedAndTheRingsKeepWorking() throws Exception {
        Path socket = dir.resolve("hostile.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.LOOPBACK);
             NetTestDriver d = NetTestDriver.start(socket, ALL)) {
            assertEquals(0, d.send(new byte[5], 1, 0), "shorter than the header");
            assertEquals(0, d.send(new byte[12 + 13], 1, 0), "header and a runt shorter than an Ethernet header");
            assertEquals(0, d.send(new byte[VirtioNetDevice.MAX_TX_CHAIN_BYTES + 1], 3, 0), "one byte too long");
            assertEquals(0, d.send(new byte[0], 0, 2048), "write-only chain");
            assertEquals(0, d.send(new byte[100], 1, 64), "readable then writable");
            assertEquals(5, device.counters().txDropped(), device.counters().toString());
            assertEquals(0, device.counters().txPackets(), device.counters().toString());
            assertEquals(0, device.counters().rxDropped(), "hostile chains never reach the receive side");
            // A malformed receive chain (device-readable) is returned empty, not written.
            d.postReadOnlyRx();
            d.postRx(1, 2048);
            byte[] f = frame(new SplittableRandom(13), 1514);
            d.send(packet(12, f), 2, 0);
            TestQueue.Used skipped = d.pollRx(10_000);
            assertNotNull(skipped);
            assertEquals(0, skipped.writtenBytes(), "read-only receive chain returned with length 0");
            assertArrayEquals(f, receiveFrame(d, 12, "after hostile chains"));
            byte[] largest = frame(new SplittableRandom(17), VirtioNetDevice.MAX_TX_CHAIN_BYTES - 12);
            d.postRx(40, 2048);
            d.send(packet(12, largest), 4, 0);
            assertArrayEquals(largest, receiveFrame(d, 12, "largest frame"));
            assertEquals(2, device.counters().rxPackets(), device.counters().toString());
        }
    }

    @ParameterizedTest(name = "seed+={0}")
    @CsvSource({"1", "2", "3"})
    void randomMixOfHostileAndValidChainsShouldBeCountedExactly(long seedOffset) throws Exception {
        long seed = System.nanoTime() + seedOffset;
        SplittableRandom random = new SplittableRandom(seed);
        Path socket = dir.resolve("mix.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.LOOPBACK);
             NetTestDriver d = NetTestDriver.start(socket, ALL)) {
            long valid = 0;
            long dropped = 0;
            for (int i = 0; i < 80; i++) {
                String context = "seed=" + seed + " chain " + i;
                switch (random.nextInt(4)) {
                    case 0 -> {
                        d.send(new byte[random.nextInt(12 + 14)], 1, 0);
                        dropped++;
                    }
                    case 1 -> {
                        int length = VirtioNetDevice.MAX_TX_CHAIN_BYTES + 1 + random.nextInt(4000);
                        d.send(new byte[length], 1 + random.nextInt(4), 0);
                        dropped++;
                    }
                    case 2 -> {
                        d.send(new byte[0], 0, 1 + random.nextInt(4096));
                        dropped++;
                    }
                    default -> {
                        byte[] f = frame(random, 14 + random.nextInt(1501));
                        d.postRx(1, 2048);
                        d.send(packet(12, f), 1 + random.nextInt(3), 0);
                        assertArrayEquals(f, receiveFrame(d, 12, context), context);
                        valid++;
                    }
                }
                assertEquals(dropped, device.counters().txDropped(), context + " " + device.counters());
                assertEquals(valid, device.counters().txPackets(), context + " " + device.counters());
            }
            assertEquals(valid, device.counters().rxPackets(), "seed=" + seed + " " + device.counters());
            assertEquals(0, device.counters().rxDropped(), "seed=" + seed + " " + device.counters());
        }
    }

    @Test
    void sinkShouldCountAndDrop() throws Exception {
        Path socket = dir.resolve("sink.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.SINK);
             NetTestDriver d = NetTestDriver.start(socket, ALL)) {
            d.postRx(8, 2048);
            long bytes = 0;
            SplittableRandom random = new SplittableRandom(19);
            for (int i = 0; i < 20; i++) {
                int length = 60 + random.nextInt(1455);
                d.send(packet(12, frame(random, length)), 1, 0);
                bytes += length;
            }
            assertEquals(20, device.counters().txPackets());
            assertEquals(bytes, device.counters().txBytes());
            assertEquals(0, device.counters().rxPackets());
            assertNull(d.pollRx(50), "sink delivers nothing");
        }
    }

    @Test
    void configSpaceShouldHoldTheMacAndLinkUp() throws Exception {
        Path socket = dir.resolve("config.sock");
        try (VhostUserServer server = serve(socket, VirtioNetDevice.Mode.SINK);
             NetTestDriver d = NetTestDriver.start(socket, ALL)) {
            byte[] config = d.frontend.getConfig(0, VirtioNetDevice.CONFIG_SIZE);
            assertArrayEquals(MAC, Arrays.copyOf(config, 6));
            assertEquals(VirtioNetDevice.S_LINK_UP, config[6] | config[7] << 8, "status");
            assertEquals(1, config[8] | config[9] << 8, "max_virtqueue_pairs");
            assertEquals(ALL, d.acked & ALL, "every offered feature acknowledged");
        }
    }

    @Test
    void macParsingShouldRefuseMalformedText() {
        assertArrayEquals(MAC, VirtioNetDevice.parseMac("52:54:00:12:34:56"));
        assertArrayEquals(MAC, VirtioNetDevice.parseMac("52-54-00-12-34-56"));
        for (String bad : new String[] {"52:54:00:12:34", "52:54:00:12:34:5g", "525:4:00:12:34:56", ""}) {
            try {
                VirtioNetDevice.parseMac(bad);
                throw new AssertionError("accepted '" + bad + "'");
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().contains(bad), expected.getMessage());
            }
        }
    }
}
