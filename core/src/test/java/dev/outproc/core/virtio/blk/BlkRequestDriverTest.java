package dev.outproc.core.virtio.blk;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.core.virtqueue.DeviceQueue;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.PackedQueue;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.core.virtqueue.SplitQueue;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The virtio-blk driver's requests as a device sees them, with no transport at all: the doorbell runs a
 * small device on core's device-side queue over the same guest memory, which decodes each request by
 * the spec's layout (VIRTIO 1.2 §5.2.6) and records it.
 */
class BlkRequestDriverTest {
    private static final ValueLayout.OfInt LE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long BASE = 0x10_0000L;
    private static final long BYTES = 4L << 20;

    /** A request the device decoded: header fields, readable and writable sizes. */
    private record Seen(int type, int reserved, long sector, long readable, long writable) {
    }

    /** A RAM disk behind a device-side queue; answers when the driver kicks. */
    private static final class Device implements BlkRequestDriver.Doorbell {
        final DeviceQueue queue;
        final DriverQueue driver;
        final byte[] disk = new byte[1 << 20];
        final List<Seen> seen = new ArrayList<>();
        final List<long[]> segments = new ArrayList<>();
        boolean silent;

        Device(DeviceQueue queue, DriverQueue driver) {
            this.queue = queue;
            this.driver = driver;
        }

        @Override
        public void publishAndKick() throws IOException {
            driver.publish();
            if (silent) {
                return;
            }
            DescriptorChain chain;
            MemorySegment header = MemorySegment.ofArray(new byte[VirtioBlk.HEADER_SIZE]);
            while ((chain = queue.pop()) != null) {
                chain.readReadable(0, header, 0, VirtioBlk.HEADER_SIZE);
                int type = header.get(LE_U32, VirtioBlk.HEADER_TYPE_OFFSET);
                long sector = header.get(LE_U64, VirtioBlk.HEADER_SECTOR_OFFSET);
                seen.add(new Seen(type, header.get(LE_U32, VirtioBlk.HEADER_RESERVED_OFFSET), sector,
                        chain.totalReadable(), chain.totalWritable()));
                long data = chain.totalWritable() - 1;
                long written = 1;
                int status = VirtioBlk.S_OK;
                MemorySegment disk = MemorySegment.ofArray(this.disk);
                switch (type) {
                    case VirtioBlk.T_OUT -> chain.readReadable(VirtioBlk.HEADER_SIZE, disk, sector * 512,
                            chain.totalReadable() - VirtioBlk.HEADER_SIZE);
                    case VirtioBlk.T_IN -> {
                        chain.writeWritable(0, disk, sector * 512, data);
                        written += data;
                    }
                    case VirtioBlk.T_GET_ID -> {
                        byte[] id = "core-test".getBytes(StandardCharsets.US_ASCII);
                        chain.writeWritable(0, MemorySegment.ofArray(id), 0, id.length);
                        written += data;
                    }
                    case VirtioBlk.T_WRITE_ZEROES -> {
                        MemorySegment s = MemorySegment.ofArray(new byte[VirtioBlk.SEGMENT_SIZE]);
                        chain.readReadable(VirtioBlk.HEADER_SIZE, s, 0, VirtioBlk.SEGMENT_SIZE);
                        segments.add(new long[] {s.get(LE_U64, VirtioBlk.SEGMENT_SECTOR_OFFSET),
                                s.get(LE_U32, VirtioBlk.SEGMENT_NUM_SECTORS_OFFSET), s.get(LE_U32, VirtioBlk.SEGMENT_FLAGS_OFFSET)});
                    }
                    case VirtioBlk.T_FLUSH -> { }
                    default -> status = VirtioBlk.S_UNSUPP;
                }
                chain.writeWritable(data, MemorySegment.ofArray(new byte[] {(byte) status}), 0, 1);
                queue.addUsed(chain, written);
            }
        }

        @Override
        public void awaitNotification(long timeoutMillis) throws IOException {
            try {
                Thread.sleep(Math.min(timeoutMillis, 5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
    }

    private interface Body {
        void run(BlkRequestDriver blk, Device device) throws Exception;
    }

    private static void withDriver(boolean packed, int queueSize, int depth, Body body) throws Exception {
        try (GuestRegion region = GuestRegion.allocate(BASE, BYTES, 0x7f00_0000_0000L)) {
            GuestMemory memory = GuestMemory.of(List.of(region));
            GpaAllocator allocator = new GpaAllocator(BASE, BASE + BYTES);
            DriverQueue driver = packed
                    ? PackedDriverQueue.allocate("blk", memory, allocator, queueSize, 0, 0)
                    : SplitDriverQueue.allocate("blk", memory, allocator, queueSize, 0, 0);
            DeviceQueue queue = packed ? new PackedQueue("blk") : new SplitQueue("blk");
            queue.configure(driver.config(), memory);
            Device device = new Device(queue, driver);
            body.run(new BlkRequestDriver(memory, allocator, driver, device, depth, 64 * 1024, 200), device);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldLayOutRequestsAsTheSpecSays(boolean packed) throws Exception {
        withDriver(packed, 16, 1, (blk, device) -> {
            long seed = new SplittableRandom().nextLong();
            byte[] data = new byte[4096];
            new SplittableRandom(seed).nextBytes(data);
            assertEquals(VirtioBlk.S_OK, blk.write(9, data), "seed=" + seed);
            assertEquals(new Seen(VirtioBlk.T_OUT, 0, 9, VirtioBlk.HEADER_SIZE + 4096, 1), device.seen.getLast());
            byte[] back = new byte[4096];
            assertEquals(VirtioBlk.S_OK, blk.read(9, back));
            assertEquals(new Seen(VirtioBlk.T_IN, 0, 9, VirtioBlk.HEADER_SIZE, 4096 + 1), device.seen.getLast());
            assertArrayEquals(data, back, "seed=" + seed);
            assertEquals(VirtioBlk.S_OK, blk.flush());
            assertEquals(new Seen(VirtioBlk.T_FLUSH, 0, 0, VirtioBlk.HEADER_SIZE, 1), device.seen.getLast());
            assertEquals("core-test", blk.getId());
            assertEquals(VirtioBlk.ID_BYTES + 1, device.seen.getLast().writable());
            assertEquals(VirtioBlk.S_OK, blk.zeroRange(VirtioBlk.T_WRITE_ZEROES, 77, 5));
            assertArrayEquals(new long[] {77, 5, 0}, device.segments.getLast());
            assertEquals(0, blk.busySlots());
        }
        );
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldReportTheDevicesStatusAndMatchCompletionsToSlots(boolean packed) throws Exception {
        withDriver(packed, 16, 2, (blk, device) -> {
            blk.submit(0, 99, 0, 0, false);
            blk.submit(1, VirtioBlk.T_FLUSH, 0, 0, false);
            assertEquals(2, blk.busySlots());
            blk.kick();
            int first = blk.awaitCompletion();
            int second = blk.awaitCompletion();
            assertEquals(0, first);
            assertEquals(1, second);
            assertEquals(VirtioBlk.S_UNSUPP, blk.status(0));
            assertEquals(VirtioBlk.S_OK, blk.status(1));
        });
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldFailCleanlyWhenTheRingIsFullOrTheDeviceIsSilent(boolean packed) throws Exception {
        withDriver(packed, 4, 2, (blk, device) -> {
            device.silent = true;
            blk.submit(0, VirtioBlk.T_IN, 0, 512, true);
            IOException full = assertThrows(IOException.class, () -> blk.submit(1, VirtioBlk.T_IN, 0, 512, true));
            assertTrue(full.getMessage().startsWith("ring full"), full.getMessage());
            blk.kick();
            IOException silent = assertThrows(IOException.class, blk::awaitCompletion);
            assertEquals("no completion within 200 ms", silent.getMessage());
            assertEquals(0xff, blk.status(0), "an unanswered request keeps the driver's marker");
        });
        assertThrows(IllegalArgumentException.class, () -> BlkRequestDriver.checkSizes(0, 512));
        assertThrows(IllegalArgumentException.class, () -> BlkRequestDriver.checkSizes(1, 100));
    }
}
