package dev.outproc.examples.vfio;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.examples.Main;
import dev.outproc.vfio.client.MigrationDriver;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.server.Interrupts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

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

    private final List<Process> servers = new ArrayList<>();

    @AfterEach
    void stopServers() throws InterruptedException {
        for (Process p : servers) {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    private Path startSample(String name, String... options) throws Exception {
        Path socket = dir.resolve(name + ".sock");
        Path log = dir.resolve(name + ".log");
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "vfio-user-sample", "--socket-path", socket.toString()));
        command.addAll(List.of(options));
        Process process = new ProcessBuilder(command).redirectError(log.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        servers.add(process);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket) && process.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(Files.exists(socket), () -> "the sample listens; stderr: " + read(log));
        return socket;
    }

    /** Runs the examples' command line in this JVM; returns exit status, standard output, standard error. */
    private static String[] run(String... args) {
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = Main.commandLine().execute(args);
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
        return new String[] {Integer.toString(status), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void infoNamesTheCardsIdsBarsCapabilitiesAndIrqs() throws Exception {
        Path socket = startSample("a");
        String[] r = run("vfio-user-client", "--socket-path", socket.toString(), "info");
        assertEquals("0", r[0], r[2]);
        String report = r[1];
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
        assertEquals("0", run("vfio-user-client", "--socket-path", socket.toString(), "info")[0]);
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
        String[] r = run("vfio-user-client", "migrate", "--from", a.toString(), "--to", b.toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("pre-copy bytes: "), r[1]);
        assertFalse(r[1].contains("pre-copy bytes: 0\n"), "both cards offer PRE_COPY: " + r[1]);
        assertTrue(r[1].contains("source: STOP"), r[1]);
        assertTrue(r[1].contains("destination: RUNNING"), r[1]);
        String[] stopCopyOnly = run("vfio-user-client", "migrate", "--no-pre-copy", "--from", b.toString(), "--to", a.toString());
        assertEquals("0", stopCopyOnly[0], stopCopyOnly[2]);
        assertTrue(stopCopyOnly[1].contains("pre-copy bytes: 0\n"), stopCopyOnly[1]);
        assertFalse(stopCopyOnly[1].contains("stop-copy bytes: 0\n"), stopCopyOnly[1]);
        assertTrue(stopCopyOnly[1].contains("destination: RUNNING"), stopCopyOnly[1]);
    }

    @Test
    void printCapabilitiesNamesTheCardsMigrationDescriptor() {
        String[] r = run("vfio-user-sample", "--print-capabilities", "--bar2-size", "16384");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("\"type\" : \"vfio-user-pci\""), r[1]);
        assertTrue(r[1].contains("\"model\" : \"" + SampleCardState.MODEL_ID + "\""), r[1]);
        assertTrue(r[1].contains("\"formatClass\" : \"" + SampleCardState.FORMAT_CLASS + "\""), r[1]);
        assertTrue(r[1].contains("\"bar2_bytes\" : \"16384\""), r[1]);
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
        String[] r = run("vfio-user-client", "migrate", "--from", a.toString(), "--to", b.toString(),
                "--from-handshake", "unix:" + dir.resolve("a.mig"), "--to-handshake", "unix:" + dir.resolve("b.mig"));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("handshake: {\"agreed\":true"), r[1]);
        assertTrue(r[1].contains("\"formatClass\":\"" + SampleCardState.FORMAT_CLASS + "\""), r[1]);
        assertTrue(r[1].indexOf("handshake:") < r[1].indexOf("pre-copy bytes:"), "the handshake comes first: " + r[1]);
        assertTrue(r[1].contains("destination: RUNNING"), r[1]);
    }

    @Test
    void migrateRefusesAnIncompatibleDestinationWithReasonsBeforeAnyStateMoves() throws Exception {
        Path a = startSample("a", "--migration-socket", dir.resolve("a.mig").toString());
        Path b = startSample("b", "--migration-socket", dir.resolve("b.mig").toString(), "--bar2-size", "16384");
        String[] r = run("vfio-user-client", "migrate", "--from", a.toString(), "--to", b.toString(),
                "--from-handshake", "unix:" + dir.resolve("a.mig"), "--to-handshake", "unix:" + dir.resolve("b.mig"));
        assertEquals("1", r[0], r[1] + r[2]);
        assertTrue(r[1].contains("\"agreed\":false"), r[1]);
        assertTrue(r[1].contains("\"refusedBy\":\"destination\""), r[1]);
        assertTrue(r[1].contains("bar2_bytes"), "the reason names the parameter: " + r[1]);
        assertFalse(r[1].contains("bytes:"), "no state moved: " + r[1]);
        assertTrue(r[2].contains("no state moved"), r[2]);
        assertFalse(read(dir.resolve("a.log")).contains("MIG_DATA"), read(dir.resolve("a.log")));
    }

    @Test
    void aMissingSocketIsOneLineAndStatusOne() {
        Path missing = dir.resolve("absent.sock");
        for (String[] args : List.of(new String[] {"vfio-user-client", "--socket-path", missing.toString(), "info"},
                new String[] {"vfio-user-client", "migrate", "--from", missing.toString(), "--to", missing.toString()})) {
            String[] r = run(args);
            assertEquals("1", r[0]);
            assertEquals(1, r[2].lines().count(), r[2]);
            assertTrue(r[2].startsWith("vfio-user-client: " + missing), r[2]);
            assertFalse(r[2].contains("Exception"), r[2]);
        }
    }

    @Test
    void sigtermStopsTheSampleAndRemovesItsSocket() throws Exception {
        Path socket = startSample("a");
        Process p = servers.getFirst();
        try (VfioUserClient c = VfioUserClientCommand.open(socket)) {
            p.destroy(); // SIGTERM while a client is connected
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the sample stops on SIGTERM");
        }
        assertFalse(Files.exists(socket), "the socket is removed");
        assertTrue(read(dir.resolve("a.log")).contains("vfio-user-sample: serving on " + socket), read(dir.resolve("a.log")));
    }

    private static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }
}
