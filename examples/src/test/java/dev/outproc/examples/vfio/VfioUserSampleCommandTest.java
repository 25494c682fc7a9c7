package dev.outproc.examples.vfio;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.examples.testing.CommandRun;
import dev.outproc.examples.testing.SubcommandProcesses;
import dev.outproc.vfio.client.MigrationDriver;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.server.Interrupts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.outproc.examples.testing.SubcommandProcesses.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vfio-user-sample} as a program, driven by {@code vfio-user-client} and by the library's client:
 * enumeration, the register file's side effects, the doorbell's DMA and interrupt, migration, SIGTERM.
 */
class VfioUserSampleCommandTest {
    @TempDir
    Path dir;

    private final SubcommandProcesses servers = new SubcommandProcesses();

    @AfterEach
    void stopServers() throws InterruptedException {
        servers.close();
    }

    private Path startSample(String name, String... options) throws Exception {
        Path socket = dir.resolve(name + ".sock");
        Path log = dir.resolve(name + ".log");
        List<String> args = new ArrayList<>(List.of("vfio-user-sample", "--socket-path", socket.toString()));
        args.addAll(List.of(options));
        servers.start(socket, log, args.toArray(String[]::new));
        assertTrue(Files.exists(socket), () -> "the sample listens; stderr: " + read(log));
        return socket;
    }

    @Test
    void infoNamesTheCardsIdsBarsCapabilitiesAndIrqs() throws Exception {
        Path socket = startSample("a");
        CommandRun r = CommandRun.of("vfio-user-client", "--socket-path", socket.toString(), "info");
        assertEquals(0, r.status(), r.err());
        String report = r.out();
        assertTrue(report.contains("[4e58:0002] class 088000"), report);
        assertTrue(report.contains("region 0 (BAR0): size=0x1000"), report);
        assertTrue(report.contains("memory 32-bit"), report);
        assertTrue(report.contains("region 2 (BAR2): size=0x2000"), report);
        assertTrue(report.contains("64-bit prefetchable"), report);
        assertTrue(report.contains("sparse mmap: 0x0+0x1000"), report);
        assertTrue(report.contains("MSI: Enable- Count=1/1"), report);
        assertTrue(report.contains("irq 0 (INTx): count=1"), report);
        assertTrue(report.contains("migration: flags=0x5 STOP_COPY PRE_COPY"), report);
        // served client after client: a second enumeration works as well
        assertEquals(0, CommandRun.of("vfio-user-client", "--socket-path", socket.toString(), "info").status());
    }

    @Test
    void doorbellDmasThePatternIntoClientMemoryAndRaisesIntx() throws Exception {
        Path socket = startSample("a");
        try (VfioUserClient c = VfioUserClientCommand.open(socket);
             GuestRegion ram = GuestRegion.allocate(0x40_0000, 0x10_0000, 0);
             EventFd intx = EventFd.create();
             Arena a = Arena.ofConfined()) {
            c.dmaMap(0x40_0000, 0x10_0000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
            c.setIrqEventFds(Interrupts.INTX, 0, List.of(intx));
            MemorySegment reg = a.allocate(8);
            c.regionRead(0, SampleCard.ID, reg.asSlice(0, 4));
            assertEquals(SampleCard.ID_VALUE, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0x1234_5678);
            c.regionWrite(0, SampleCard.SCRATCH, reg.asSlice(0, 4));
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0);
            c.regionRead(0, SampleCard.SCRATCH, reg.asSlice(0, 4));
            assertEquals(0x1234_5678, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "scratch keeps its value");
            for (int expected = 0; expected < 3; expected++) {
                c.regionRead(0, SampleCard.COUNTER, reg.asSlice(0, 4));
                assertEquals(expected, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "the counter counts its reads");
            }
            assertEquals(0, intx.drain(), "no interrupt before the doorbell");

            reg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x40_0000 + 0x3000 + 5);
            c.regionWrite(0, SampleCard.DMA_ADDR, reg);
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 300);
            c.regionWrite(0, SampleCard.DMA_LEN, reg.asSlice(0, 4));
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0xF0);
            c.regionWrite(0, SampleCard.SEED, reg.asSlice(0, 4));
            c.regionWrite(0, SampleCard.DOORBELL, reg.asSlice(0, 4));

            MemorySegment mem = ram.segment();
            for (int i = 0; i < 300; i++) {
                assertEquals((byte) (0xF0 + i), mem.get(ValueLayout.JAVA_BYTE, 0x3005 + i), "pattern byte " + i);
            }
            assertEquals(0, mem.get(ValueLayout.JAVA_BYTE, 0x3004), "nothing written before the address");
            assertEquals(0, mem.get(ValueLayout.JAVA_BYTE, 0x3005 + 300), "nothing written past the length");
            assertEquals(1, intx.drain(), "the doorbell raised INTx");
            c.regionRead(0, SampleCard.STATUS, reg.asSlice(0, 4));
            assertEquals(SampleCard.STATUS_DONE, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, SampleCard.STATUS_DONE);
            c.regionWrite(0, SampleCard.STATUS, reg.asSlice(0, 4));
            c.regionRead(0, SampleCard.STATUS, reg.asSlice(0, 4));
            assertEquals(0, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "STATUS is write-1-to-clear");

            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, SampleCard.MAX_DMA + 1);
            c.regionWrite(0, SampleCard.DMA_LEN, reg.asSlice(0, 4));
            c.regionWrite(0, SampleCard.DOORBELL, reg.asSlice(0, 4));
            c.regionRead(0, SampleCard.STATUS, reg.asSlice(0, 4));
            assertEquals(SampleCard.STATUS_ERROR, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "an oversized DMA is refused");
            c.regionRead(0, SampleCard.RINGS, reg.asSlice(0, 4));
            assertEquals(2, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
        }
    }

    @Test
    void migrationMovesTheRegistersIntoASecondServer() throws Exception {
        Path a = startSample("a");
        Path b = startSample("b");
        try (VfioUserClient source = VfioUserClientCommand.open(a); VfioUserClient destination = VfioUserClientCommand.open(b);
             Arena arena = Arena.ofConfined()) {
            MemorySegment reg = arena.allocate(4);
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0xCAFE_F00D);
            source.regionWrite(0, SampleCard.SCRATCH, reg);
            MigrationDriver.Result r = MigrationDriver.migrate(source, destination, 16);
            assertTrue(r.preCopyBytes() > SampleCard.BAR2_SIZE, "PRE_COPY moved BAR2: " + r);
            assertTrue(r.stopCopyBytes() > 0 && r.stopCopyBytes() < SampleCard.BAR2_SIZE, "STOP_COPY moved the rest: " + r);
            reg.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0);
            destination.regionRead(0, SampleCard.SCRATCH, reg);
            assertEquals(0xCAFE_F00D, reg.get(ValueLayout.JAVA_INT_UNALIGNED, 0), "the scratch register arrived");
        }
        CommandRun r = CommandRun.of("vfio-user-client", "migrate", "--from", a.toString(), "--to", b.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("pre-copy bytes: "), r.out());
        assertFalse(r.out().contains("pre-copy bytes: 0\n"), "both cards offer PRE_COPY: " + r.out());
        assertTrue(r.out().contains("source: STOP"), r.out());
        assertTrue(r.out().contains("destination: RUNNING"), r.out());
        CommandRun stopCopyOnly = CommandRun.of("vfio-user-client", "migrate", "--no-pre-copy", "--from", b.toString(), "--to", a.toString());
        assertEquals(0, stopCopyOnly.status(), stopCopyOnly.err());
        assertTrue(stopCopyOnly.out().contains("pre-copy bytes: 0\n"), stopCopyOnly.out());
        assertFalse(stopCopyOnly.out().contains("stop-copy bytes: 0\n"), stopCopyOnly.out());
        assertTrue(stopCopyOnly.out().contains("destination: RUNNING"), stopCopyOnly.out());
    }

    @Test
    void printCapabilitiesNamesTheCardsMigrationDescriptor() {
        CommandRun r = CommandRun.of("vfio-user-sample", "--print-capabilities", "--bar2-size", "16384");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("\"type\" : \"vfio-user-pci\""), r.out());
        assertTrue(r.out().contains("\"model\" : \"" + SampleCardState.MODEL_ID + "\""), r.out());
        assertTrue(r.out().contains("\"formatClass\" : \"" + SampleCardState.FORMAT_CLASS + "\""), r.out());
        assertTrue(r.out().contains("\"bar2_bytes\" : \"16384\""), r.out());
    }

    @Test
    void migrateRunsTheHandshakeFirstAndMovesStateUnderTheAgreement() throws Exception {
        Path a = startSample("a", "--migration-socket", dir.resolve("a.mig").toString());
        Path b = startSample("b", "--migration-socket", dir.resolve("b.mig").toString());
        try (VfioUserClient source = VfioUserClientCommand.open(a); VfioUserClient destination = VfioUserClientCommand.open(b)) {
            assertEquals(dev.outproc.core.fd.Errno.EPERM, org.junit.jupiter.api.Assertions.assertThrows(
                    dev.outproc.vfio.message.VfioUserProtocolException.class, () -> MigrationDriver.migrate(source, destination, 4096)).errno(),
                    "a card with a migration endpoint moves no state without an agreement");
        }
        CommandRun r = CommandRun.of("vfio-user-client", "migrate", "--from", a.toString(), "--to", b.toString(),
                "--from-handshake", "unix:" + dir.resolve("a.mig"), "--to-handshake", "unix:" + dir.resolve("b.mig"));
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("handshake: {\"agreed\":true"), r.out());
        assertTrue(r.out().contains("\"formatClass\":\"" + SampleCardState.FORMAT_CLASS + "\""), r.out());
        assertTrue(r.out().indexOf("handshake:") < r.out().indexOf("pre-copy bytes:"), "the handshake comes first: " + r.out());
        assertTrue(r.out().contains("destination: RUNNING"), r.out());
    }

    @Test
    void migrateRefusesAnIncompatibleDestinationWithReasonsBeforeAnyStateMoves() throws Exception {
        Path a = startSample("a", "--migration-socket", dir.resolve("a.mig").toString());
        Path b = startSample("b", "--migration-socket", dir.resolve("b.mig").toString(), "--bar2-size", "16384");
        CommandRun r = CommandRun.of("vfio-user-client", "migrate", "--from", a.toString(), "--to", b.toString(),
                "--from-handshake", "unix:" + dir.resolve("a.mig"), "--to-handshake", "unix:" + dir.resolve("b.mig"));
        assertEquals(1, r.status(), r.out() + r.err());
        assertTrue(r.out().contains("\"agreed\":false"), r.out());
        assertTrue(r.out().contains("\"refusedBy\":\"destination\""), r.out());
        assertTrue(r.out().contains("bar2_bytes"), "the reason names the parameter: " + r.out());
        assertFalse(r.out().contains("bytes:"), "no state moved: " + r.out());
        assertTrue(r.err().contains("no state moved"), r.err());
        assertFalse(read(dir.resolve("a.log")).contains("MIG_DATA"), read(dir.resolve("a.log")));
    }

    @Test
    void aMissingSocketIsOneLineAndStatusOne() {
        Path missing = dir.resolve("absent.sock");
        for (String[] args : List.of(new String[] {"vfio-user-client", "--socket-path", missing.toString(), "info"},
                new String[] {"vfio-user-client", "migrate", "--from", missing.toString(), "--to", missing.toString()})) {
            CommandRun r = CommandRun.of(args);
            assertEquals(1, r.status());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("vfio-user-client: " + missing), r.err());
            assertFalse(r.err().contains("Exception"), r.err());
        }
    }

    @Test
    void sigtermStopsTheSampleAndRemovesItsSocket() throws Exception {
        Path socket = dir.resolve("a.sock");
        Process p = servers.start(socket, dir.resolve("a.log"), "vfio-user-sample", "--socket-path", socket.toString());
        assertTrue(Files.exists(socket), () -> "the sample listens; stderr: " + read(dir.resolve("a.log")));
        try (VfioUserClient c = VfioUserClientCommand.open(socket)) {
            p.destroy(); // SIGTERM while a client is connected
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the sample stops on SIGTERM");
        }
        assertFalse(Files.exists(socket), "the socket is removed");
        assertTrue(read(dir.resolve("a.log")).contains("vfio-user-sample: serving on " + socket), read(dir.resolve("a.log")));
    }
}
