package dev.outproc.vfio.interop;

import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.vfio.client.DeviceReport;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.server.MigrationState;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our client against libvfio-user's sample servers ({@code samples/server}, {@code samples/gpio-pci-idio-16}).
 * libvfio-user is in no package archive: these tests run when {@code OUTPROC_LIBVFIO_USER_SAMPLES} names the
 * {@code build/samples} directory of a local build (with the sample's BAR1 at 0x4000, see the guide) and
 * skip otherwise, even in CI.
 */
class LibvfioUserSamplesIT {
    @TempDir
    Path dir;

    private static Path samples() {
        String env = System.getenv("OUTPROC_LIBVFIO_USER_SAMPLES");
        Assumptions.assumeTrue(env != null && Files.isExecutable(Path.of(env, "server")),
                "OUTPROC_LIBVFIO_USER_SAMPLES does not name a libvfio-user samples build");
        return Path.of(env);
    }

    private final java.util.Map<Process, Path> logs = new java.util.HashMap<>();

    private Process start(Path binary, Path socket) throws IOException, InterruptedException {
        Path log = socket.resolveSibling(socket.getFileName() + ".log");
        Process p = new ProcessBuilder(binary.toString(), "-v", socket.toString()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        logs.put(p, log);
        for (int i = 0; i < 100 && !Files.exists(socket); i++) {
            Thread.sleep(50);
        }
        assertTrue(Files.exists(socket), binary + " did not create its socket");
        return p;
    }

    private void stop(Process p) throws InterruptedException, IOException {
        p.destroy();
        if (!p.waitFor(5, TimeUnit.SECONDS)) {
            p.destroyForcibly();
        }
        List<String> lines = Files.readAllLines(logs.get(p));
        System.out.println("--- " + logs.get(p).getFileName() + " (last lines)");
        lines.subList(Math.max(0, lines.size() - 25), lines.size()).forEach(System.out::println);
    }

    @Test
    void shouldEnumerateTheSampleServerLikeLspci() throws Exception {
        Path socket = dir.resolve("server.sock");
        Process server = start(samples().resolve("server"), socket);
        try (VfioUserClient c = VfioUserClient.connect(socket)) {
            Capabilities caps = c.negotiate(Capabilities.builder().maxMsgFds(8).maxDataXferSize(1 << 20).build());
            assertEquals(8, caps.maxMsgFds());
            String report = DeviceReport.of(c);
            System.out.println(report);
            assertTrue(report.contains("[dead:beef]"), report);
            assertTrue(report.contains("subsystem [cafe:babe]"), report);
            assertTrue(report.contains("region 1 (BAR1): size=0x4000 [RWMC]"), report);
            assertTrue(report.contains("sparse mmap: 0x0+0x1000") && report.contains("sparse mmap: 0x2000+0x1000"), report);
            assertTrue(report.contains("irq 0 (INTx): count=1"), report);
            assertTrue(report.contains("STOP_COPY") && report.contains("PRE_COPY"), report);
        } finally {
            stop(server);
        }
    }

    @Test
    void shouldAnswerTheSampleServersDmaMessagesAndShareFdMemory() throws Exception {
        Path socket = dir.resolve("server.sock");
        Process server = start(samples().resolve("server"), socket);
        try (VfioUserClient c = VfioUserClient.connect(socket);
             dev.outproc.core.event.EventFd intx = dev.outproc.core.event.EventFd.create();
             GuestRegion byMessages = GuestRegion.allocate(0x1_0000_0000L, 0x1000, 0x1_0000_0000L);
             GuestRegion byFd = GuestRegion.allocate(0x1_0001_0000L, 0x1000, 0x1_0001_0000L);
             Arena a = Arena.ofConfined()) {
            c.negotiate(Capabilities.builder().maxMsgFds(8).build());
            c.serveDmaFrom(GuestMemory.of(List.of(byMessages, byFd)));
            c.setIrqEventFds(0, 0, List.of(intx)); // the sample raises INTx before its DMA and exits without an eventfd
            c.dmaMap(byMessages.guestPhysAddr(), 0x1000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, null, 0);
            c.dmaMap(byFd.guestPhysAddr(), 0x1000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, byFd.fd(), 0);
            MemorySegment seconds = a.allocate(8);
            seconds.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, java.time.Instant.now().getEpochSecond() + 1);
            c.regionWrite(0, 0, seconds); // BAR0 takes an absolute time: the sample's timer handler does DMA both ways
            int answered = c.serveServerCommands(2500); // 4 DMA_WRITEs of 1 KiB, then 2 DMA_READs of 2 KiB
            assertEquals(6, answered);
            c.deviceInfo();
            for (int i = 0; i < 4; i++) {
                assertEquals((byte) ('A' + i), byMessages.segment().get(ValueLayout.JAVA_BYTE, i * 1024L), "written through DMA_WRITE messages");
                assertEquals((byte) ('A' + i), byFd.segment().get(ValueLayout.JAVA_BYTE, i * 1024L), "written through the mapped fd");
            }
            assertTrue(server.isAlive(), "the sample exits when the data it reads back mismatches");
            assertEquals(1, intx.drain(), "the sample's INTx arrived on our eventfd");
            c.dmaUnmap(byMessages.guestPhysAddr(), 0x1000);
            c.dmaUnmapAll();
        } finally {
            stop(server);
        }
    }

    @Test
    void shouldAnswerTheSampleServersDmaOnTheTwinSocket() throws Exception {
        Path socket = dir.resolve("twin.sock");
        Process server = start(samples().resolve("server"), socket);
        try (VfioUserClient c = VfioUserClient.connect(socket);
             dev.outproc.core.event.EventFd intx = dev.outproc.core.event.EventFd.create();
             GuestRegion byMessages = GuestRegion.allocate(0x1_0000_0000L, 0x1000, 0x1_0000_0000L);
             GuestRegion byFd = GuestRegion.allocate(0x1_0001_0000L, 0x1000, 0x1_0001_0000L);
             Arena a = Arena.ofConfined()) {
            c.negotiate(Capabilities.builder().maxMsgFds(8).twinSocket(true, -1).build());
            assertTrue(c.twinSocket(), "libvfio-user enables twin-socket mode when the client proposes it");
            c.serveDmaFrom(GuestMemory.of(List.of(byMessages, byFd)));
            c.setIrqEventFds(0, 0, List.of(intx));
            c.dmaMap(byMessages.guestPhysAddr(), 0x1000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, null, 0);
            c.dmaMap(byFd.guestPhysAddr(), 0x1000, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, byFd.fd(), 0);
            MemorySegment seconds = a.allocate(8);
            seconds.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, java.time.Instant.now().getEpochSecond() + 1);
            c.regionWrite(0, 0, seconds);
            // Nothing read from the main socket meanwhile: only the client's twin thread can answer the DMA commands.
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (byMessages.segment().get(ValueLayout.JAVA_BYTE, 3 * 1024L) != 'D' && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            Thread.sleep(500); // the sample reads the data back with DMA_READ and exits on a mismatch
            for (int i = 0; i < 4; i++) {
                assertEquals((byte) ('A' + i), byMessages.segment().get(ValueLayout.JAVA_BYTE, i * 1024L), "written through DMA_WRITE on the twin socket");
            }
            assertTrue(server.isAlive(), "the sample exits when the data it reads back mismatches");
            assertEquals(9, c.deviceInfo().numRegions(), "commands on the main socket kept working");
        } finally {
            stop(server);
        }
    }

    @Test
    void shouldMigrateOneSampleServerIntoAnother() throws Exception {
        Path socketA = dir.resolve("a.sock");
        Path socketB = dir.resolve("b.sock");
        Process a = start(samples().resolve("server"), socketA);
        Process b = start(samples().resolve("server"), socketB);
        try (VfioUserClient source = VfioUserClient.connect(socketA); VfioUserClient dest = VfioUserClient.connect(socketB);
             Arena arena = Arena.ofConfined()) {
            source.negotiate(Capabilities.builder().build());
            dest.negotiate(Capabilities.builder().build());
            MemorySegment pattern = arena.allocate(0x4000);
            for (int i = 0; i < 0x4000; i++) {
                pattern.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
            }
            try (VfioUserClient.Region bar1 = source.regionInfo(1)) {
                try (var map = dev.outproc.core.memory.SharedMapping.map(bar1.fd().get(), bar1.mmapOffset(), 0x4000, true)) {
                    map.segment().copyFrom(pattern);
                }
            }
            MemorySegment bar0 = arena.allocate(8);
            bar0.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, java.time.Instant.now().getEpochSecond() + 3600);
            source.regionWrite(0, 0, bar0); // the sample re-arms its timer from BAR0 when the destination runs
            MemorySegment chunk = arena.allocate(1024);
            MemorySegment all = arena.allocate(1 << 20);
            long moved = 0;
            assertEquals(MigrationState.PRE_COPY.code(), source.migrationState(MigrationState.PRE_COPY.code()));
            assertEquals(0x4000, drain(source, chunk, all, 0), "PRE_COPY: BAR1");
            // samples/server.c restarts its stream on entering STOP_COPY (BAR1 again, then BAR0) and its
            // destination takes exactly that stream: the PRE_COPY bytes are superseded, not prepended.
            assertEquals(MigrationState.STOP_COPY.code(), source.migrationState(MigrationState.STOP_COPY.code()));
            moved = drain(source, chunk, all, 0);
            assertEquals(0x4008, moved, "STOP_COPY: BAR1 and BAR0");
            assertEquals(MigrationState.RESUMING.code(), dest.migrationState(MigrationState.RESUMING.code()));
            for (long at = 0; at < moved; at += 1024) {
                dest.writeMigrationData(all.asSlice(at, Math.min(1024, moved - at)));
            }
            assertEquals(MigrationState.RUNNING.code(), dest.migrationState(MigrationState.RUNNING.code()));
            System.out.println("migrated " + moved + " bytes from samples/server to samples/server");
            try (VfioUserClient.Region bar1 = dest.regionInfo(1);
                 var map = dev.outproc.core.memory.SharedMapping.map(bar1.fd().get(), bar1.mmapOffset(), 0x4000, false)) {
                assertEquals(-1L, map.segment().mismatch(pattern), "BAR1 arrived");
            }
        } finally {
            stop(a);
            stop(b);
        }
    }

    private static long drain(VfioUserClient c, MemorySegment chunk, MemorySegment all, long at) throws IOException {
        long total = 0;
        while (true) {
            long n = c.readMigrationData(chunk);
            MemorySegment.copy(chunk, 0, all, at + total, n);
            total += n;
            if (n < chunk.byteSize()) {
                return total;
            }
        }
    }

    @Test
    void shouldEnumerateTheGpioSample() throws Exception {
        Path socket = dir.resolve("gpio.sock");
        Process gpio = start(samples().resolve("gpio-pci-idio-16"), socket);
        try (VfioUserClient c = VfioUserClient.connect(socket)) {
            c.negotiate(Capabilities.builder().build());
            String report = DeviceReport.of(c);
            System.out.println(report);
            assertTrue(report.contains("[494f:0dc8]"), report);
            assertTrue(report.contains("region 2 (BAR2): size=0x100"), report);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment b = a.allocate(1);
                c.regionRead(2, 0, b);
            }
        } finally {
            stop(gpio);
        }
    }
}
