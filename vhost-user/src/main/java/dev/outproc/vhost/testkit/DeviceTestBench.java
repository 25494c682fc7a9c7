package dev.outproc.vhost.testkit;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.frontend.FrontendQueue;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.VhostUserFeature;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A device under test with a guest in front of it, in a few lines: the device served by a
 * {@link VhostUserServer} on a socket in a fresh temporary directory, our {@link VhostUserFrontend}
 * connected to it, features negotiated (everything the device offers, or a chosen subset), memfd guest
 * memory shared with SET_MEM_TABLE, and rings started on request as {@link TestQueue}s that post
 * buffers and wait for them the way a guest driver does. Everything runs in the test's process, over
 * a real socket, real eventfds and real shared memory.
 *
 * {@snippet :
 * try (DeviceTestBench bench = DeviceTestBench.start(new MyDevice())) {
 *     TestQueue queue = bench.startQueue(0);
 *     queue.post(new byte[0], 64);                 // one device-writable buffer of 64 bytes
 *     TestQueue.Used used = queue.kickAndAwait();
 *     assertEquals(64, used.writtenBytes());
 * }
 * }
 *
 * <p>For tests only: not thread-safe, and it allocates freely. Run the JVM with native access granted
 * (surefire's {@code <argLine>--enable-native-access=ALL-UNNAMED</argLine>}).
 */
public final class DeviceTestBench implements AutoCloseable {
    /** Guest-physical address of the guest memory. */
    public static final long GUEST_BASE = 0x1_0000_0000L;
    private static final long USER_BASE = 0x7e00_0000_0000L;
    /** Bytes of guest memory (memfd pages are taken only when touched). */
    public static final long MEMORY_BYTES = 64L << 20;
    /** Protocol features the bench asks for (each only when the back-end offers it). */
    private static final long PROTOCOL_FEATURES = ProtocolFeature.maskOf(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK,
            ProtocolFeature.CONFIG);

    private final Path directory;
    private final VhostUserServer server;
    private final Thread serverThread;
    private final VhostUserFrontend frontend;
    private final GuestRegion region;
    private final GuestMemory memory;
    private final GpaAllocator allocator;
    private final long features;
    private final List<TestQueue> queues = new ArrayList<>();

    private DeviceTestBench(Path directory, VhostUserServer server, Thread serverThread, VhostUserFrontend frontend,
                            GuestRegion region, GuestMemory memory, long features) {
        this.directory = directory;
        this.server = server;
        this.serverThread = serverThread;
        this.frontend = frontend;
        this.region = region;
        this.memory = memory;
        this.allocator = new GpaAllocator(GUEST_BASE, GUEST_BASE + MEMORY_BYTES);
        this.features = features;
    }

    /**
     * Serves {@code device} and negotiates every feature it offers.
     *
     * @param device the device under test
     * @return the bench, ready for {@link #startQueue}
     * @throws IOException when serving or negotiating fails
     */
    public static DeviceTestBench start(VirtioDevice device) throws IOException {
        return start(device, -1L);
    }

    /**
     * Serves {@code device} and negotiates the wanted features it offers.
     *
     * @param device the device under test
     * @param wantedFeatures the virtio features the guest driver would take ({@code -1} for all; LOG_ALL
     *        is never taken)
     * @return the bench, ready for {@link #startQueue}
     * @throws IOException when serving or negotiating fails
     */
    public static DeviceTestBench start(VirtioDevice device, long wantedFeatures) throws IOException {
        Path directory = Files.createTempDirectory("outproc-testbench");
        Path socket = directory.resolve("device.sock");
        VhostUserServer server = null;
        try {
            // One worker: the device sees every queue on one thread, as the simplest back-ends assume.
            server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
            Thread serverThread = Thread.ofPlatform().daemon(true).name("testbench-server").start(server::run);
            return open(socket, wantedFeatures, directory, server, serverThread);
        } catch (IOException | RuntimeException e) {
            if (server != null) {
                server.close();
            }
            deleteQuietly(directory, socket);
            throw e;
        }
    }

    /**
     * Connects to a back-end that is already running (in another process, or written in another
     * language) and negotiates the wanted features it offers: the same guest side, for any device.
     *
     * @param socket the back-end's socket
     * @param wantedFeatures the virtio features the guest driver would take ({@code -1} for all)
     * @return the bench, ready for {@link #startQueue}; closing it disconnects and leaves the back-end running
     * @throws IOException when connecting or negotiating fails
     */
    public static DeviceTestBench connect(Path socket, long wantedFeatures) throws IOException {
        return open(socket, wantedFeatures, null, null, null);
    }

    private static DeviceTestBench open(Path socket, long wantedFeatures, Path directory, VhostUserServer server,
                                        Thread serverThread) throws IOException {
        VhostUserFrontend frontend = VhostUserFrontend.connect(socket);
        GuestRegion region = null;
        try {
            // LOG_ALL is what a VMM sets while it migrates, not what a guest driver takes.
            long acked = frontend.negotiate(wantedFeatures & ~VhostUserFeature.LOG_ALL.mask(), PROTOCOL_FEATURES);
            region = GuestRegion.allocate(GUEST_BASE, MEMORY_BYTES, USER_BASE);
            GuestMemory memory = GuestMemory.of(List.of(region));
            frontend.setMemTable(memory);
            return new DeviceTestBench(directory, server, serverThread, frontend, region, memory, acked);
        } catch (IOException | RuntimeException e) {
            frontend.close();
            if (region != null) {
                region.close();
            }
            throw e;
        }
    }

    /** {@return the virtio features negotiated (the device's offer, narrowed to what was wanted)} */
    public long features() {
        return features;
    }

    /**
     * {@return whether a feature was negotiated}
     *
     * @param feature the feature
     */
    public boolean has(VirtioFeature feature) {
        return (features & feature.mask()) != 0;
    }

    /** {@return the front-end, for requests the bench does not wrap (GET_CONFIG, SET_VRING_ENABLE, ...)} */
    public VhostUserFrontend frontend() {
        return frontend;
    }

    /** {@return the server serving the device, or {@code null} for a bench that {@link #connect connected}} */
    public VhostUserServer server() {
        return server;
    }

    /** {@return the guest memory} */
    public GuestMemory memory() {
        return memory;
    }

    /**
     * Reads the device's configuration space through GET_CONFIG.
     *
     * @param offset where to start
     * @param size how many bytes
     * @return the bytes
     * @throws IOException when the back-end refuses
     */
    public byte[] config(int offset, int size) throws IOException {
        return frontend.getConfig(offset, size);
    }

    /**
     * Starts a split ring of 64 entries, with 64 KiB of buffer space per entry.
     *
     * @param index the queue index
     * @return the queue
     * @throws IOException when the back-end refuses
     */
    public TestQueue startQueue(int index) throws IOException {
        return startQueue(index, 64, 64 * 1024);
    }

    /**
     * Starts a ring (packed when negotiated, else split).
     *
     * @param index the queue index
     * @param size queue size, a power of two
     * @param bufferBytes the largest buffer {@link TestQueue#post} takes
     * @return the queue
     * @throws IOException when the back-end refuses
     */
    public TestQueue startQueue(int index, int size, int bufferBytes) throws IOException {
        long queueFeatures = features & (QueueConfig.F_EVENT_IDX | QueueConfig.F_INDIRECT_DESC | QueueConfig.F_RING_PACKED);
        String name = "testbench-" + index;
        DriverQueue driver = (features & QueueConfig.F_RING_PACKED) != 0
                ? PackedDriverQueue.allocate(name, memory, allocator, size, queueFeatures, 0)
                : SplitDriverQueue.allocate(name, memory, allocator, size, queueFeatures, 0);
        long buffers = allocator.allocate((long) size * bufferBytes, 4096);
        FrontendQueue started = frontend.startQueue(index, driver, memory);
        TestQueue queue = new TestQueue(this, started, size, buffers, bufferBytes);
        queues.add(queue);
        return queue;
    }

    MemorySegment slice(long gpa, long bytes) {
        try {
            return memory.slice(gpa, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    byte[] read(long gpa, int bytes) {
        return bytes == 0 ? new byte[0] : slice(gpa, bytes).toArray(ValueLayout.JAVA_BYTE);
    }

    /** Stops the rings, disconnects, and stops the server it started (removing its socket and directory). */
    @Override
    public void close() {
        for (TestQueue q : queues) {
            q.ring().close();
        }
        frontend.close();
        if (server != null) {
            server.close();
            try {
                serverThread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            deleteQuietly(directory, directory.resolve("device.sock"));
        }
        region.close();
    }

    private static void deleteQuietly(Path directory, Path socket) {
        try {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(directory);
        } catch (IOException ignored) {
            // a temporary directory left behind is harmless
        }
    }
}
