package dev.outproc.examples.vfio;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.core.virtio.VirtioStatus;
import dev.outproc.core.virtio.blk.BlkRequestDriver;
import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.core.virtqueue.DriverQueue;
import dev.outproc.core.virtqueue.GpaAllocator;
import dev.outproc.core.virtqueue.PackedDriverQueue;
import dev.outproc.core.virtqueue.SplitDriverQueue;
import dev.outproc.examples.blk.MemoryBlockStore;
import dev.outproc.examples.blk.VirtioBlkDevice;
import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.model.Registry;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.server.MigrationState;
import dev.outproc.vfio.server.PreCopyInfo;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import dev.outproc.vfio.virtio.VirtioPciDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End-to-end migration v2 of virtio-blk over vfio-user, with the library's client as the VMM: guest memory in a
 * memfd DMA-mapped into server A, the device set up through BAR writes and driven by core's driver-side queue,
 * DMA logging and PRE_COPY while the driver keeps reading, STOP_COPY, the stream into a fresh server B in
 * RESUMING, and the driver going on against B on the same queue with the same indices.
 */
class VirtioBlkPciMigrationTest {
    private static final int BAR = VirtioPciDevice.STRUCTURES_BAR;
    private static final long RAM = 0x100_0000;
    private static final long RAM_BYTES = 0x40_0000;
    private static final long PAGE = 4096;
    private static final int QUEUE_SIZE = 64;
    private static final int MAX_REQUEST = 16 * 1024;
    private static final long DISK_BYTES = 1 << 20;
    private static final Registry REGISTRY = builtin();

    private static Registry builtin() {
        try {
            return Registry.builtin();
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @TempDir
    Path dir;
    private final List<AutoCloseable> resources = new ArrayList<>();
    private GuestRegion ram;
    private GuestMemory memory;
    /** The server the driver talks to now. */
    private VfioUserClient current;

    /** One server: its device, its migration handler, its client. */
    private record Server(VirtioBlkDevice blk, VirtioPciDevice pci, VirtioBlkPciMigration migration, VfioUserClient client) {
    }

    @AfterEach
    void close() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    private Server server(String name, boolean readOnly) throws Exception {
        MemoryBlockStore store = new MemoryBlockStore(DISK_BYTES, false);
        MemorySegment pattern = MemorySegment.ofArray(new byte[(int) DISK_BYTES]);
        for (int i = 0; i < DISK_BYTES; i++) {
            pattern.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + (i >>> 9)));
        }
        store.write(0, pattern);
        MemoryBlockStore served = readOnly ? new MemoryBlockStore(DISK_BYTES, true) : store;
        VirtioBlkDevice blk = new VirtioBlkDevice(served, 1, QUEUE_SIZE, name);
        VirtioPciDevice pci = new VirtioPciDevice(blk);
        resources.add(pci);
        VirtioBlkPciMigration migration = VirtioBlkPciMigration.install(pci, blk, true);
        Path socket = dir.resolve(name + ".sock");
        UnixListener listener = UnixListener.bind(socket);
        VfioUserServer server = new VfioUserServer(pci, ServerOptions.DEFAULTS);
        Thread serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
        resources.add(() -> {
            listener.close();
            server.disconnectClient();
            serving.join(5000);
        });
        VfioUserClient client = VfioUserClient.connect(socket);
        resources.add(client);
        client.negotiate(Capabilities.builder().maxMsgFds(8).build());
        client.dmaMap(RAM, RAM_BYTES, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
        return new Server(blk, pci, migration, client);
    }

    private void guestMemory() throws IOException {
        ram = GuestRegion.allocate(RAM, RAM_BYTES, 0);
        resources.add(0, ram);
        memory = GuestMemory.of(List.of(ram));
    }

    // ---- the driver: BAR accesses ----

    private void write(int offset, int size, long value) throws IOException {
        MemorySegment s = MemorySegment.ofArray(new byte[size]);
        for (int i = 0; i < size; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (value >>> (8 * i)));
        }
        current.regionWrite(BAR, VirtioPciDevice.COMMON_OFFSET + offset, s);
    }

    private static byte[] registers(VfioUserClient client) throws IOException {
        // The common configuration of queue 0 and the device configuration (the ISR is left alone: reading clears it).
        byte[] common = new byte[0x3C];
        client.regionRead(BAR, VirtioPciDevice.COMMON_OFFSET, MemorySegment.ofArray(common));
        byte[] device = new byte[60];
        client.regionRead(BAR, VirtioPciDevice.DEVICE_OFFSET, MemorySegment.ofArray(device));
        byte[] all = Arrays.copyOf(common, common.length + device.length);
        System.arraycopy(device, 0, all, common.length, device.length);
        return all;
    }

    private DriverQueue setUp(boolean packed, GpaAllocator allocator) throws IOException {
        long features = VirtioFeature.VERSION_1.mask() | (packed ? VirtioFeature.RING_PACKED.mask() : 0);
        DriverQueue queue = packed ? PackedDriverQueue.allocate("driver", memory, allocator, QUEUE_SIZE, features, 0)
                : SplitDriverQueue.allocate("driver", memory, allocator, QUEUE_SIZE, features, 0);
        write(0x14, 1, 0);
        write(0x14, 1, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER);
        write(0x08, 4, 0);
        write(0x0C, 4, features & 0xFFFF_FFFFL);
        write(0x08, 4, 1);
        write(0x0C, 4, features >>> 32);
        write(0x14, 1, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK);
        write(0x10, 2, 0); // config_msix_vector
        write(0x16, 2, 0); // queue_select
        write(0x18, 2, QUEUE_SIZE);
        write(0x1A, 2, 1); // queue_msix_vector
        write(0x20, 8, queue.config().descAddr());
        write(0x28, 8, queue.config().driverAddr());
        write(0x30, 8, queue.config().deviceAddr());
        write(0x1C, 2, 1); // queue_enable
        write(0x14, 1, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK | VirtioStatus.DRIVER_OK);
        return queue;
    }

    private BlkRequestDriver driver(DriverQueue queue, GpaAllocator allocator) {
        return new BlkRequestDriver(memory, allocator, queue, new BlkRequestDriver.Doorbell() {
            @Override
            public void publishAndKick() throws IOException {
                queue.publish();
                current.regionWrite(BAR, VirtioPciDevice.NOTIFY_OFFSET, MemorySegment.ofArray(new byte[2]));
            }

            @Override
            public void awaitNotification(long timeoutMillis) {
                // Interrupts are not wired: the driver polls its used ring again.
                Thread.onSpinWait();
            }
        }, 2, MAX_REQUEST, 5000);
    }

    /** Reads {@code bytes} at {@code sector} through slot 0; returns them. */
    private byte[] read(BlkRequestDriver driver, long sector, int bytes) throws IOException {
        driver.submit(0, VirtioBlk.T_IN, sector, bytes, true);
        driver.kick();
        assertEquals(0, driver.awaitCompletion());
        assertEquals(VirtioBlk.S_OK, driver.status(0));
        byte[] data = new byte[bytes];
        MemorySegment.copy(driver.data(0), ValueLayout.JAVA_BYTE, 0, data, 0, bytes);
        return data;
    }

    private long gpa(MemorySegment guestSlice) {
        return RAM + (guestSlice.address() - ram.segment().address());
    }

    private static void pages(TreeSet<Long> into, long gpa, long length) {
        for (long p = gpa / PAGE; p <= (gpa + length - 1) / PAGE; p++) {
            into.add(p * PAGE);
        }
    }

    private static TreeSet<Long> reported(long[] bitmap) {
        TreeSet<Long> pages = new TreeSet<>();
        for (int w = 0; w < bitmap.length; w++) {
            for (int b = 0; b < 64; b++) {
                if ((bitmap[w] & (1L << b)) != 0) {
                    pages.add(RAM + ((long) w * 64 + b) * PAGE);
                }
            }
        }
        return pages;
    }

    /** Source and destination agree through the handshake; returns whether the destination accepted. */
    private static MigrationSession.Answer handshake(DeviceDescriptor source, VirtioBlkPciMigration sourceHandler,
                                                     DeviceDescriptor destination, VirtioBlkPciMigration destinationHandler)
            throws IOException {
        SecureRandom random = new SecureRandom();
        MigrationSession.Source src = MigrationSession.source(source, REGISTRY, true, random);
        MigrationSession.Destination dst = MigrationSession.destination(destination, new CompatibilityChecker(REGISTRY), true, random);
        MigrationSession.Answer answer = dst.answer(src.offer());
        if (answer.accepted()) {
            sourceHandler.agreed(true, src.complete(answer.bytes()));
            destinationHandler.agreed(false, answer.agreement());
        }
        return answer;
    }

    private static byte[] drain(VfioUserClient client) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        MemorySegment chunk = MemorySegment.ofArray(new byte[64]);
        while (true) {
            long n = client.readMigrationData(chunk);
            out.write(chunk.toArray(ValueLayout.JAVA_BYTE), 0, (int) n);
            if (n < chunk.byteSize()) {
                return out.toByteArray();
            }
        }
    }

    private static void feed(VfioUserClient client, byte[] stream) throws IOException {
        for (int at = 0; at < stream.length; at += 100) {
            int n = Math.min(100, stream.length - at);
            client.writeMigrationData(MemorySegment.ofArray(Arrays.copyOfRange(stream, at, at + n)));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shouldMigrateWithPreCopyReportExactlyTheWrittenPagesAndContinueOnTheDestination(boolean packed) throws Exception {
        guestMemory();
        Server a = server("a", false);
        current = a.client();
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        DriverQueue queue = setUp(packed, allocator);
        BlkRequestDriver driver = driver(queue, allocator);
        byte[] before = read(driver, 3, 4096);

        Server b = server("b", false);
        assertTrue(handshake(a.migration().descriptor("mem"), a.migration(), b.migration().descriptor("mem"), b.migration()).accepted());

        a.client().startDmaLogging(PAGE, List.of(new long[] {RAM, RAM_BYTES}));
        a.client().migrationState(MigrationState.PRE_COPY.code());
        byte[] initial = drain(a.client());
        assertTrue(initial.length > 0, "PRE_COPY sends the header");
        assertEquals(0, a.migration().preCopyInfo().initialBytes(), "all initial bytes read");
        assertEquals(0, a.migration().preCopyInfo().dirtyBytes(), "the driver changed nothing of the device section");

        // The driver keeps reading while PRE_COPY runs; what the device writes is exactly what the log reports.
        TreeSet<Long> expected = new TreeSet<>();
        int[] sizes = {512, 4096, 9000 / 512 * 512};
        for (int i = 0; i < sizes.length; i++) {
            read(driver, 8 + 40L * i, sizes[i]);
            long data = gpa(driver.data(0));
            pages(expected, data, sizes[i]);
            pages(expected, data + MAX_REQUEST, 1); // status byte
        }
        if (packed) {
            pages(expected, queue.config().descAddr(), 16L * QUEUE_SIZE); // used descriptors go back into the ring
            pages(expected, queue.config().deviceAddr(), 4); // device event suppression
        } else {
            pages(expected, queue.config().deviceAddr(), 6 + 8L * QUEUE_SIZE); // used ring: flags, elements, idx
        }
        assertEquals(expected, reported(a.client().dmaLoggingReport(RAM, RAM_BYTES, PAGE)));
        assertEquals(new TreeSet<Long>(), reported(a.client().dmaLoggingReport(RAM, RAM_BYTES, PAGE)), "a report clears the log");

        a.client().migrationState(MigrationState.STOP_COPY.code());
        byte[] rest = drain(a.client());
        a.client().migrationState(MigrationState.STOP.code());
        a.client().stopDmaLogging();
        byte[] registersA = registers(a.client());

        b.client().migrationState(MigrationState.RESUMING.code());
        feed(b.client(), initial);
        feed(b.client(), rest);
        b.client().migrationState(MigrationState.STOP.code());
        b.client().migrationState(MigrationState.RUNNING.code());
        current = b.client();
        byte[] registersB = registers(b.client());
        assertArrayEquals(registersA, registersB);
        assertEquals(crc(registersA), crc(registersB));

        // Same queue, same indices: the next request completes on B, and the data agree with A's.
        assertArrayEquals(before, read(driver, 3, 4096));
        byte[] more = read(driver, 100, 8192);
        b.pci().pauseQueues();
        int usedB = b.blk().currentState().queues().get(0).nextUsed();
        int usedA = a.blk().currentState().queues().get(0).nextUsed();
        int perRequest = packed ? 3 : 1; // a packed ring moves by the chain's descriptors
        assertEquals((usedA + 2 * perRequest) % (packed ? QUEUE_SIZE : 65536), usedB, "B continued from A's used index");
        assertEquals(8192, more.length);
    }

    private static long crc(byte[] bytes) {
        CRC32 c = new CRC32();
        c.update(bytes);
        return c.getValue();
    }

    @Test
    void shouldForgetASaveInProgressOnDeviceResetAndWhenTheClientGoes() throws Exception {
        guestMemory();
        Server a = server("a", false);
        current = a.client();
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        setUp(false, allocator);
        Server b = server("b", false);
        assertTrue(handshake(a.migration().descriptor("mem"), a.migration(), b.migration().descriptor("mem"), b.migration()).accepted());
        a.client().migrationState(MigrationState.PRE_COPY.code());
        assertTrue(a.migration().preCopyInfo().initialBytes() > 0, "the header and device section wait to be read");

        a.client().reset(); // VFIO_USER_DEVICE_RESET
        assertEquals(MigrationState.RUNNING.code(), a.client().migrationState(-1));
        assertEquals(new PreCopyInfo(0, 0), a.migration().preCopyInfo(), "the stream in progress is gone");
        assertEquals(0, a.pci().status());

        assertTrue(handshake(a.migration().descriptor("mem"), a.migration(), b.migration().descriptor("mem"), b.migration()).accepted());
        a.client().migrationState(MigrationState.PRE_COPY.code());
        assertTrue(a.migration().preCopyInfo().initialBytes() > 0);
        resources.remove(a.client());
        a.client().close(); // the client goes in PRE_COPY: the server resets the device once the session ends
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (a.migration().preCopyInfo().initialBytes() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(new PreCopyInfo(0, 0), a.migration().preCopyInfo(), "the stream in progress is gone with the client");
    }

    @Test
    void shouldCarryTheDriversResetDuringPreCopyInTheStream() throws Exception {
        guestMemory();
        Server a = server("a", false);
        current = a.client();
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        setUp(false, allocator);
        Server b = server("b", false);
        assertTrue(handshake(a.migration().descriptor("mem"), a.migration(), b.migration().descriptor("mem"), b.migration()).accepted());
        a.client().migrationState(MigrationState.PRE_COPY.code());
        byte[] initial = drain(a.client());
        write(0x14, 1, 0); // the guest's driver resets the virtio device: not a function reset, the stream goes on
        assertEquals(0, a.migration().preCopyInfo().dirtyBytes(), "no section was sent before the stop");
        a.client().migrationState(MigrationState.STOP_COPY.code());
        byte[] rest = drain(a.client());
        a.client().migrationState(MigrationState.STOP.code());

        b.client().migrationState(MigrationState.RESUMING.code());
        feed(b.client(), initial);
        feed(b.client(), rest);
        b.client().migrationState(MigrationState.STOP.code());
        b.client().migrationState(MigrationState.RUNNING.code());
        assertEquals(0, b.pci().status());
        assertArrayEquals(registers(a.client()), registers(b.client()));
    }

    @Test
    void shouldRefuseAnIncompatibleDestinationBeforeAnyDataMoves() throws Exception {
        guestMemory();
        Server a = server("a", false);
        Server readOnly = server("ro", true);
        MigrationSession.Answer ro = handshake(a.migration().descriptor("mem"), a.migration(), readOnly.migration().descriptor("mem"),
                readOnly.migration());
        assertFalse(ro.accepted());
        assertFalse(ro.reasons().isEmpty());
        // A vhost-user-blk destination reads format versions 1 and 2 only: no common version.
        DeviceDescriptor vhost = readOnly.blk().descriptor("outproc.dev/examples/memory-blk", "mem");
        DeviceDescriptor vhostRw = new DeviceDescriptor(vhost.modelId(), vhost.implementationId(), vhost.formatClass(),
                a.migration().descriptor("mem").parameters(), vhost.readVersions(), vhost.writeVersions());
        MigrationSession.Answer old = handshake(a.migration().descriptor("mem"), a.migration(), vhostRw, readOnly.migration());
        assertFalse(old.accepted(), old.reasons().toString());
        // Without an agreement the source refuses to save: nothing was read, and it still runs.
        assertThrows(IOException.class, () -> a.client().migrationState(MigrationState.PRE_COPY.code()));
        assertEquals(MigrationState.RUNNING.code(), a.client().migrationState(-1));
        // RUNNING -> STOP_COPY walks through STOP, which is allowed; the save itself is refused, so it stays stopped.
        assertThrows(IOException.class, () -> a.client().migrationState(MigrationState.STOP_COPY.code()));
        assertEquals(MigrationState.STOP.code(), a.client().migrationState(-1));
        assertEquals(MigrationState.RUNNING.code(), a.client().migrationState(MigrationState.RUNNING.code()));
    }

    @Test
    void shouldRefuseTruncatedAndTamperedStreamsAndStayUsable() throws Exception {
        guestMemory();
        Server a = server("a", false);
        current = a.client();
        GpaAllocator allocator = new GpaAllocator(RAM, RAM + RAM_BYTES);
        BlkRequestDriver driver = driver(setUp(false, allocator), allocator);
        byte[] before = read(driver, 5, 2048);
        Server b = server("b", false);
        assertTrue(handshake(a.migration().descriptor("mem"), a.migration(), b.migration().descriptor("mem"), b.migration()).accepted());
        a.client().migrationState(MigrationState.STOP.code());
        a.client().migrationState(MigrationState.STOP_COPY.code());
        byte[] stream = drain(a.client());
        a.client().migrationState(MigrationState.STOP.code());

        b.client().migrationState(MigrationState.RESUMING.code());
        feed(b.client(), Arrays.copyOf(stream, stream.length - 7));
        assertThrows(IOException.class, () -> b.client().migrationState(MigrationState.STOP.code()), "truncated");
        assertEquals(MigrationState.RESUMING.code(), b.client().migrationState(-1));
        byte[] tampered = stream.clone();
        tampered[tampered.length / 2] ^= 0x10;
        feed(b.client(), tampered);
        assertThrows(IOException.class, () -> b.client().migrationState(MigrationState.STOP.code()), "tampered");
        assertEquals(MigrationState.RESUMING.code(), b.client().migrationState(-1));
        assertEquals(0, b.pci().status(), "nothing of a refused stream was applied");

        feed(b.client(), stream);
        b.client().migrationState(MigrationState.STOP.code());
        b.client().migrationState(MigrationState.RUNNING.code());
        current = b.client();
        assertArrayEquals(before, read(driver, 5, 2048));
    }
}
