package dev.outproc.examples.vfio;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.examples.migration.HandshakeBeforeTransfer;
import dev.outproc.examples.migration.MigrationEndpointServer;
import dev.outproc.examples.migration.MigrationOptions;
import dev.outproc.migration.handshake.HandshakeRelay;
import dev.outproc.vfio.client.MigrationDriver;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.server.MigrationState;
import dev.outproc.vfio.server.PreCopyInfo;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sample card's migration in one process over real sockets: the bytes are a migration-format stream,
 * PRE_COPY streams BAR2 first with estimates, the rest follows in STOP_COPY, DMA dirty logging reports exactly the
 * pages the doorbell wrote, and a card with a migration endpoint moves state only under a handshake agreement.
 */
class SampleCardMigrationTest {
    @TempDir
    Path dir;

    private final List<AutoCloseable> resources = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();

    /** A card served on a socket, with its server. */
    private record Served(SampleCard card, VfioUserServer server, Path socket) {
    }

    private Served serve(String name, long bar2Bytes, boolean requireAgreement) throws Exception {
        SampleCard card = new SampleCard(bar2Bytes, requireAgreement);
        VfioUserServer server = new VfioUserServer(card.device(), ServerOptions.DEFAULTS);
        Path socket = dir.resolve(name + ".sock");
        UnixListener listener = UnixListener.bind(socket);
        resources.add(() -> {
            listener.close();
            server.disconnectClient();
        });
        threads.add(Thread.ofPlatform().daemon().start(() -> server.serve(listener)));
        return new Served(card, server, socket);
    }

    private MigrationEndpointServer endpoint(String name, SampleCard card) throws Exception {
        MigrationOptions options = new MigrationOptions();
        MigrationEndpointServer e = MigrationEndpointServer.start(dir.resolve(name + ".mig"), options.sessions(card.descriptor()),
                card::migrationAgreed);
        resources.add(e);
        return e;
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable r : resources) {
            r.close();
        }
        for (Thread t : threads) {
            t.join(5000);
        }
    }

    private static VfioUserClient client(Path socket) throws IOException {
        VfioUserClient c = VfioUserClient.connect(socket);
        c.negotiate(Capabilities.builder().maxMsgFds(8).maxDataXferSize(1 << 20).build());
        return c;
    }

    private static void write32(VfioUserClient c, int offset, int value) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(4);
            v.set(ValueLayout.JAVA_INT_UNALIGNED, 0, value);
            c.regionWrite(0, offset, v);
        }
    }

    private static void write64(VfioUserClient c, int offset, long value) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(8);
            v.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
            c.regionWrite(0, offset, v);
        }
    }

    private static int read32(VfioUserClient c, int offset) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(4);
            c.regionRead(0, offset, v);
            return v.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
        }
    }

    /** Reads MIG_DATA until a short read; returns what came. */
    private static byte[] drain(VfioUserClient c, int chunkBytes) throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment chunk = a.allocate(chunkBytes);
            while (true) {
                long n = c.readMigrationData(chunk);
                all.write(chunk.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
                if (n < chunkBytes) {
                    return all.toByteArray();
                }
            }
        }
    }

    private static void ringDoorbell(VfioUserClient c, long address, int length, int seed) throws IOException {
        write64(c, SampleCard.DMA_ADDR, address);
        write32(c, SampleCard.DMA_LEN, length);
        write32(c, SampleCard.SEED, seed);
        write32(c, SampleCard.DOORBELL, 1);
    }

    @Test
    void shouldStreamBar2InPreCopyAndTheRestInStopCopyAsOneMigrationFormatStream() throws Exception {
        Served a = serve("a", SampleCard.BAR2_SIZE, false);
        Served b = serve("b", SampleCard.BAR2_SIZE, false);
        try (VfioUserClient source = client(a.socket()); VfioUserClient destination = client(b.socket())) {
            MemorySegment bar2 = a.card().bar2();
            for (int i = 0; i < bar2.byteSize(); i++) {
                bar2.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
            }
            write32(source, SampleCard.SCRATCH, 0x5EED_0001);
            assertTrue(a.server().preCopyInfo().isEmpty(), "no estimates outside PRE_COPY");

            assertEquals(MigrationState.PRE_COPY.code(), source.migrationState(MigrationState.PRE_COPY.code()));
            PreCopyInfo first = a.server().preCopyInfo().orElseThrow();
            assertTrue(first.initialBytes() > SampleCard.BAR2_SIZE, "the initial part holds BAR2: " + first);
            assertEquals(0, first.dirtyBytes());
            byte[] initial = drain(source, 1000);
            assertEquals(first.initialBytes(), initial.length, "the initial part, then a short read");
            assertEquals(new PreCopyInfo(0, 0), a.server().preCopyInfo().orElseThrow());
            assertEquals(0, drain(source, 1000).length, "the temporary end of the stream: nothing more while nothing changed");

            bar2.set(ValueLayout.JAVA_BYTE, 0x1001, (byte) 0x42); // the card keeps running: page 1 changes
            write32(source, SampleCard.SCRATCH, 0x5EED_0002);
            assertEquals(new PreCopyInfo(0, 4096), a.server().preCopyInfo().orElseThrow(), "one dirty page");

            assertEquals(MigrationState.STOP_COPY.code(), source.migrationState(MigrationState.STOP_COPY.code()));
            byte[] rest = drain(source, 1000);
            assertTrue(rest.length > 4096 && rest.length < SampleCard.BAR2_SIZE, "the changed page and the registers: " + rest.length);
            assertEquals(MigrationState.STOP.code(), source.migrationState(MigrationState.STOP.code()));

            byte[] stream = new byte[initial.length + rest.length];
            System.arraycopy(initial, 0, stream, 0, initial.length);
            System.arraycopy(rest, 0, stream, initial.length, rest.length);
            SampleCardState parsed = SampleCardState.read(Channels.newChannel(new ByteArrayInputStream(stream)), null, SampleCard.BAR2_SIZE);
            assertEquals(0x5EED_0002, parsed.scratch(), "the registers as they were at the stop");
            assertArrayEquals(bar2.toArray(ValueLayout.JAVA_BYTE), parsed.bar2(), "BAR2 with the change applied");

            assertEquals(MigrationState.RESUMING.code(), destination.migrationState(MigrationState.RESUMING.code()));
            destination.writeMigrationData(MemorySegment.ofArray(stream));
            assertEquals(MigrationState.RUNNING.code(), destination.migrationState(MigrationState.RUNNING.code()));
            assertEquals(0x5EED_0002, read32(destination, SampleCard.SCRATCH));
            assertEquals((byte) 0x42, b.card().bar2().get(ValueLayout.JAVA_BYTE, 0x1001));
            assertArrayEquals(bar2.toArray(ValueLayout.JAVA_BYTE), b.card().bar2().toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void shouldClearRegistersBar2AndAStreamInProgressOnDeviceReset() throws Exception {
        Served a = serve("a", SampleCard.BAR2_SIZE, false);
        try (VfioUserClient c = client(a.socket())) {
            MemorySegment bar2 = a.card().bar2();
            for (int i = 0; i < bar2.byteSize(); i++) {
                bar2.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 5 + 1));
            }
            write32(c, SampleCard.SCRATCH, 0x5EED_0003);
            assertEquals(MigrationState.PRE_COPY.code(), c.migrationState(MigrationState.PRE_COPY.code()));
            assertTrue(a.server().preCopyInfo().orElseThrow().initialBytes() > SampleCard.BAR2_SIZE);

            c.reset(); // VFIO_USER_DEVICE_RESET in the middle of PRE_COPY
            assertEquals(MigrationState.RUNNING.code(), c.migrationState(-1));
            assertEquals(0, read32(c, SampleCard.SCRATCH), "registers at their reset values");
            assertArrayEquals(new byte[(int) SampleCard.BAR2_SIZE], bar2.toArray(ValueLayout.JAVA_BYTE), "BAR2 cleared");

            // The old stream is gone: a new save starts with a new header and the state after the reset.
            assertEquals(MigrationState.PRE_COPY.code(), c.migrationState(MigrationState.PRE_COPY.code()));
            byte[] initial = drain(c, 1000);
            assertEquals(MigrationState.STOP_COPY.code(), c.migrationState(MigrationState.STOP_COPY.code()));
            byte[] rest = drain(c, 1000);
            byte[] stream = new byte[initial.length + rest.length];
            System.arraycopy(initial, 0, stream, 0, initial.length);
            System.arraycopy(rest, 0, stream, initial.length, rest.length);
            SampleCardState parsed = SampleCardState.read(Channels.newChannel(new ByteArrayInputStream(stream)), null, SampleCard.BAR2_SIZE);
            assertEquals(0, parsed.scratch());
            assertArrayEquals(new byte[(int) SampleCard.BAR2_SIZE], parsed.bar2());
        }
    }

    @Test
    void shouldReportExactlyThePagesTheDoorbellWroteDuringPreCopy() throws Exception {
        Served a = serve("a", SampleCard.BAR2_SIZE, false);
        long base = 0x100_0000;
        try (VfioUserClient c = client(a.socket()); GuestRegion ram = GuestRegion.allocate(base, 64 * 4096, 0)) {
            c.dmaMap(base, 64 * 4096, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
            // two logged ranges: pages 0..15 and 32..47; pages 16..31 are not logged
            assertEquals(4096, c.startDmaLogging(512, List.of(new long[] {base, 16 * 4096}, new long[] {base + 32 * 4096, 16 * 4096})),
                    "a page size hint below what the device tracks comes back as the one it selected");
            assertEquals(MigrationState.PRE_COPY.code(), c.migrationState(MigrationState.PRE_COPY.code()));
            ringDoorbell(c, base + 2 * 4096 + 8, 16, 1);           // page 2
            ringDoorbell(c, base + 5 * 4096, 4096, 2);             // page 5, whole
            ringDoorbell(c, base + 7 * 4096 + 4000, 200, 3);       // pages 7 and 8
            ringDoorbell(c, base + 20 * 4096, 64, 4);              // page 20: outside both ranges
            ringDoorbell(c, base + 35 * 4096 + 100, 10, 5);        // page 35
            assertEquals((byte) 5, ram.segment().get(ValueLayout.JAVA_BYTE, 35 * 4096 + 100), "the DMA happened");

            assertArrayEquals(new long[] {(1L << 2) | (1L << 5) | (1L << 7) | (1L << 8)}, c.dmaLoggingReport(base, 16 * 4096, 4096),
                    "exactly pages 2, 5, 7 and 8 of the first range");
            assertArrayEquals(new long[] {0}, c.dmaLoggingReport(base, 16 * 4096, 4096), "a report clears what it reported");
            ringDoorbell(c, base + 5 * 4096, 8, 6);
            assertArrayEquals(new long[] {1L << 1}, c.dmaLoggingReport(base + 4 * 4096, 4 * 4096, 4096),
                    "a sub-range reports page 5 as its bit 1, nothing outside it");
            assertArrayEquals(new long[] {1L << 1}, c.dmaLoggingReport(base + 32 * 4096, 16 * 4096, 8192),
                    "8 KiB report pages: page 35 is bit 1 of the second range");
            VfioUserProtocolException outside = assertThrows(VfioUserProtocolException.class,
                    () -> c.dmaLoggingReport(base + 16 * 4096, 16 * 4096, 4096));
            assertEquals(Errno.EINVAL, outside.errno(), "pages 16..31 were never logged");
            c.stopDmaLogging();
            assertEquals(MigrationState.RUNNING.code(), c.migrationState(MigrationState.RUNNING.code()));
        }
    }

    @Test
    void shouldMoveStateOnlyUnderAHandshakeAgreementWhenTheCardTakesPartInTheHandshake() throws Exception {
        Served a = serve("a", SampleCard.BAR2_SIZE, true);
        Served b = serve("b", SampleCard.BAR2_SIZE, true);
        endpoint("a", a.card());
        endpoint("b", b.card());
        try (VfioUserClient source = client(a.socket()); VfioUserClient destination = client(b.socket())) {
            VfioUserProtocolException refused = assertThrows(VfioUserProtocolException.class,
                    () -> source.migrationState(MigrationState.PRE_COPY.code()));
            assertEquals(Errno.EPERM, refused.errno(), "no save without an agreement");
            assertEquals(MigrationState.RUNNING.code(), source.migrationState(-1), "a refused arc leaves the card where it was");

            HandshakeRelay.Outcome o = HandshakeBeforeTransfer.relay("unix:" + dir.resolve("a.mig"), "unix:" + dir.resolve("b.mig"));
            assertTrue(o.agreed(), HandshakeBeforeTransfer.json(o));
            write32(source, SampleCard.SCRATCH, 0xA6EE_D001);
            MigrationDriver.Result r = MigrationDriver.migrate(source, destination, 4096);
            assertTrue(r.preCopyBytes() > 0 && r.stopCopyBytes() > 0, r.toString());
            assertEquals(MigrationState.RUNNING.code(), r.destinationState());
            assertEquals(0xA6EE_D001, read32(destination, SampleCard.SCRATCH));

            assertEquals(MigrationState.RUNNING.code(), source.migrationState(MigrationState.RUNNING.code()));
            assertEquals(Errno.EPERM, assertThrows(VfioUserProtocolException.class,
                    () -> source.migrationState(MigrationState.STOP_COPY.code())).errno(), "an agreement serves one transfer");
        }
    }

    @Test
    void shouldRefuseATamperedStreamAndStayResuming() throws Exception {
        Served a = serve("a", SampleCard.BAR2_SIZE, true);
        Served b = serve("b", SampleCard.BAR2_SIZE, true);
        endpoint("a", a.card());
        endpoint("b", b.card());
        assertTrue(HandshakeBeforeTransfer.relay("unix:" + dir.resolve("a.mig"), "unix:" + dir.resolve("b.mig")).agreed());
        try (VfioUserClient source = client(a.socket()); VfioUserClient destination = client(b.socket())) {
            write32(source, SampleCard.SCRATCH, 0x1111_2222);
            assertEquals(MigrationState.STOP_COPY.code(), source.migrationState(MigrationState.STOP_COPY.code()));
            byte[] stream = drain(source, 4096);
            stream[stream.length / 2] ^= 0x01;
            assertEquals(MigrationState.RESUMING.code(), destination.migrationState(MigrationState.RESUMING.code()));
            destination.writeMigrationData(MemorySegment.ofArray(stream));
            VfioUserProtocolException e = assertThrows(VfioUserProtocolException.class,
                    () -> destination.migrationState(MigrationState.RUNNING.code()));
            assertEquals(Errno.EINVAL, e.errno());
            assertEquals(MigrationState.RESUMING.code(), destination.migrationState(-1), "the load was refused, the card still resuming");
            assertFalse(read32OrZero(b.card()) == 0x1111_2222, "nothing of the tampered state was applied");
        }
    }

    private static int read32OrZero(SampleCard card) {
        return card.registerSnapshot().get(ValueLayout.JAVA_INT_UNALIGNED, SampleCard.SCRATCH);
    }
}
