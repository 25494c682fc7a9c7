package dev.outproc.vhost.testkit;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.message.VhostUserFeature;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The test kit itself, with a device that answers each request with its bytes reversed. */
class DeviceTestBenchTest {
    /** Reverses the readable bytes into the writable part; queue 1 never answers. */
    static final class ReverseDevice implements VirtioDevice {
        private final MemorySegment scratch = Arena.ofAuto().allocate(4096);
        private final VirtioQueue.ChainHandler reverse = this::reverse;

        @Override
        public long features() {
            return VirtioFeature.maskOf(VirtioFeature.VERSION_1, VirtioFeature.EVENT_IDX);
        }

        @Override
        public int queueCount() {
            return 2;
        }

        @Override
        public void processQueue(VirtioQueue queue) throws IOException {
            if (queue.index() == 0) {
                queue.drain(reverse);
            }
        }

        private long reverse(DescriptorChain chain) throws IOException {
            int n = (int) Math.min(Math.min(chain.totalReadable(), chain.totalWritable()), scratch.byteSize());
            chain.readReadable(0, scratch, 0, n);
            byte[] b = scratch.asSlice(0, n).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            for (int i = 0; i < n; i++) {
                scratch.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, b[n - 1 - i]);
            }
            chain.writeWritable(0, scratch, 0, n);
            return n;
        }
    }

    @Test
    void shouldCarryRequestsAndAnswersBetweenTestAndDevice() throws Exception {
        try (DeviceTestBench bench = DeviceTestBench.start(new ReverseDevice())) {
            assertTrue(bench.has(VirtioFeature.EVENT_IDX));
            assertEquals(0, bench.features() & VhostUserFeature.LOG_ALL.mask(), "a guest driver does not take LOG_ALL");
            TestQueue queue = bench.startQueue(0);
            int first = queue.post("abc".getBytes(StandardCharsets.US_ASCII), 8);
            int second = queue.post("hello".getBytes(StandardCharsets.US_ASCII), 8);
            queue.kick();
            TestQueue.Used a = queue.await();
            TestQueue.Used b = queue.await();
            assertEquals(first, a.id());
            assertEquals(second, b.id());
            assertArrayEquals("cba".getBytes(StandardCharsets.US_ASCII), a.written());
            assertArrayEquals("olleh".getBytes(StandardCharsets.US_ASCII), b.written());
        }
    }

    @Test
    void shouldNegotiateOnlyWhatIsWanted() throws Exception {
        try (DeviceTestBench bench = DeviceTestBench.start(new ReverseDevice(), VirtioFeature.VERSION_1.mask())) {
            assertFalse(bench.has(VirtioFeature.EVENT_IDX));
            TestQueue queue = bench.startQueue(0);
            queue.post(new byte[] {1, 2}, 2);
            assertArrayEquals(new byte[] {2, 1}, queue.kickAndAwait().written());
        }
    }

    @Test
    void shouldTimeOutOnAQueueTheDeviceDoesNotServe() throws Exception {
        try (DeviceTestBench bench = DeviceTestBench.start(new ReverseDevice())) {
            TestQueue silent = bench.startQueue(1);
            silent.post(new byte[] {1}, 1);
            silent.kick();
            IOException e = assertThrows(IOException.class, () -> silent.await(100));
            assertEquals("ring 1: nothing used within 100 ms", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> silent.post(new byte[0], 0), "an empty chain");
        }
    }

    @Test
    void shouldDriveABackEndThatAlreadyRuns(@TempDir Path dir) throws Exception {
        Path socket = dir.resolve("running.sock");
        try (VhostUserServer server = VhostUserServer.listen(new ReverseDevice(), new VhostUserBackend.Options(1, false), socket)) {
            Thread.ofPlatform().daemon(true).start(server::run);
            try (DeviceTestBench bench = DeviceTestBench.connect(socket, -1L)) {
                TestQueue queue = bench.startQueue(0);
                queue.post(new byte[] {7, 8, 9}, 3);
                assertArrayEquals(new byte[] {9, 8, 7}, queue.kickAndAwait().written());
            }
            assertTrue(Files.exists(socket), "closing a connected bench leaves the back-end running");
        }
    }
}
