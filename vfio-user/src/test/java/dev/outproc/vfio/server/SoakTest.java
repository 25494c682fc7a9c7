package dev.outproc.vfio.server;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.client.VfioUserClient;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DmaMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Client after client against one vfio-user server: connect, negotiate, DMA_MAP a fresh memfd, install MSI-X
 * eventfds, access BAR0, let the device DMA into the client's memory and raise an interrupt, then leave — by
 * turns unmapping first, or simply closing the socket with the window still mapped. After the cycles the process
 * must hold what it held after the warm-up: no more open fds, threads or memfd mappings (every client's memory
 * unmapped), mapped bytes and heap after GC within a small allowance. {@code -Dsoak.cycles=N} sets the count
 * (200 in a normal build; the {@code soak} profile runs 10,000).
 */
class SoakTest {
    private static final long RAM = 0x10_0000;
    private static final long RAM_BYTES = 0x10_0000;
    private static final int WARM_UP = 20;
    /** Room for code cache, metaspace and collector growth; a leak of one 1 MiB window per cycle exceeds it. */
    private static final long MAPPED_ALLOWANCE = 96L << 20;
    private static final long HEAP_ALLOWANCE = 16L << 20;

    @TempDir
    Path dir;

    @Test
    @Timeout(value = 4, unit = TimeUnit.HOURS)
    void clientCyclesLeaveNothingBehind() throws Exception {
        int cycles = Integer.getInteger("soak.cycles", 200);
        long seed = Long.getLong("soak.seed", System.nanoTime());
        System.out.println("vfio-user SoakTest seed=" + seed + " cycles=" + cycles);
        SplittableRandom random = new SplittableRandom(seed);
        Path socket = dir.resolve("soak.sock");
        SampleDevice device = new SampleDevice();
        UnixListener listener = UnixListener.bind(socket);
        VfioUserServer server = new VfioUserServer(device, ServerOptions.DEFAULTS);
        Thread serving = Thread.ofPlatform().daemon().start(() -> server.serve(listener));
        try {
            Snapshot before = null;
            int resetsAtStart = device.resets;
            for (int i = 0; i < WARM_UP + cycles; i++) {
                if (i == WARM_UP) {
                    before = Snapshot.settle(Snapshot.now(), device, resetsAtStart + i);
                    System.out.println("vfio-user SoakTest before: " + before);
                }
                cycle(socket, i, random);
            }
            Snapshot after = Snapshot.settle(before, device, resetsAtStart + WARM_UP + cycles);
            System.out.println("vfio-user SoakTest after " + cycles + " cycles: " + after);
            assertTrue(device.resets >= resetsAtStart + WARM_UP + cycles, "every client's departure reset the device: "
                    + (device.resets - resetsAtStart) + " resets for " + (WARM_UP + cycles) + " clients");
            assertTrue(after.fds <= before.fds, "open fds " + before.fds + " -> " + after.fds + " (more is a leak)");
            assertTrue(after.threads <= before.threads, "threads " + before.threads + " -> " + after.threads);
            assertTrue(after.memfdMappings <= before.memfdMappings,
                    "memfd mappings " + before.memfdMappings + " -> " + after.memfdMappings);
            assertTrue(after.mappedBytes - before.mappedBytes < MAPPED_ALLOWANCE,
                    "mapped bytes grew by " + ((after.mappedBytes - before.mappedBytes) >> 20) + " MiB");
            assertTrue(after.heapBytes - before.heapBytes < HEAP_ALLOWANCE,
                    "heap after GC grew by " + ((after.heapBytes - before.heapBytes) >> 10) + " KiB");
        } finally {
            listener.close();
            server.disconnectClient();
            serving.join(5000);
        }
    }

    private static void cycle(Path socket, int i, SplittableRandom random) throws Exception {
        List<EventFd> vectors = new ArrayList<>();
        try (VfioUserClient c = VfioUserClient.connect(socket);
             GuestRegion ram = GuestRegion.allocate(RAM, RAM_BYTES, 0);
             Arena a = Arena.ofConfined()) {
            c.negotiate(Capabilities.builder().maxMsgFds(8).build());
            c.dmaMap(RAM, RAM_BYTES, DmaMap.FLAG_READ | DmaMap.FLAG_WRITE, ram.fd(), 0);
            for (int v = 0; v < 4; v++) {
                vectors.add(EventFd.create());
            }
            assertEquals(1, c.setIrqEventFds(Interrupts.MSIX, 0, vectors), "cycle " + i);
            MemorySegment regs = a.allocate(16);
            long offset = random.nextInt((int) (RAM_BYTES / 8)) * 8L;
            long value = random.nextLong();
            regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, RAM + offset);
            regs.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, value);
            c.regionWrite(SampleDevice.BAR0, 0x28, regs.asSlice(8, 8));
            c.regionWrite(SampleDevice.BAR0, 0x20, regs.asSlice(0, 8)); // the device writes register 0x28 there
            assertEquals(value, ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, offset), "DMA in cycle " + i);
            c.regionWrite(SampleDevice.BAR0, 0x10, regs.asSlice(0, 4)); // raises MSI-X vector 0
            assertEquals(1, vectors.get(0).drain(), "interrupt in cycle " + i);
            if (i % 2 == 0) {
                c.dmaUnmap(RAM, RAM_BYTES);
            } // else the client leaves with its window mapped: the server must unmap it
        } finally {
            vectors.forEach(EventFd::close);
        }
    }

    /** What the process holds, read from {@code /proc/self}; heap after a full collection. */
    private record Snapshot(int fds, int threads, long mappedBytes, int memfdMappings, long heapBytes) {
        static Snapshot now() throws IOException {
            System.gc();
            System.gc();
            Runtime rt = Runtime.getRuntime();
            long heap = rt.totalMemory() - rt.freeMemory();
            long bytes = 0;
            int memfds = 0;
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                int dash = line.indexOf('-');
                int space = line.indexOf(' ');
                bytes += Long.parseUnsignedLong(line.substring(dash + 1, space), 16)
                        - Long.parseUnsignedLong(line.substring(0, dash), 16);
                if (line.contains("/memfd:")) {
                    memfds++;
                }
            }
            int fds;
            try (var s = Files.list(Path.of("/proc/self/fd"))) {
                fds = (int) s.count();
            }
            int threads = 0;
            String[] tasks = new File("/proc/self/task").list();
            for (String task : tasks == null ? new String[0] : tasks) {
                String name;
                try {
                    name = Files.readString(Path.of("/proc/self/task", task, "comm")).trim();
                } catch (IOException ended) {
                    continue;
                }
                // the JDK's pooled helpers and JUnit's timeout watcher linger after use; they are not the server's
                if (!name.startsWith("process reaper") && !name.startsWith("ForkJoinPool") && !name.startsWith("junit-jupiter-t")) {
                    threads++;
                }
            }
            return new Snapshot(fds, threads, bytes, memfds, heap);
        }

        /** The snapshot once the server has reset the device for the last client and released what it held. */
        static Snapshot settle(Snapshot baseline, SampleDevice device, int resets) throws Exception {
            Snapshot now = now();
            for (int i = 0; i < 50 && (device.resets < resets || baseline != null && (now.fds > baseline.fds
                    || now.threads > baseline.threads || now.memfdMappings > baseline.memfdMappings)); i++) {
                Thread.sleep(100);
                now = now();
            }
            return now;
        }
    }
}
