package dev.outproc.examples.blk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.examples.migration.StateTransfer;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Migration between two vhost-user-blk back-end <em>processes</em> started from their documented command line
 * ({@code vhost-user-blk --socket-path ... --image ... --migration-socket ...}): the handshake runs through the
 * documented {@code migration relay} command only, our front-end moves the device state with SET_DEVICE_STATE_FD,
 * and the driver's I/O goes on at the destination, there and back. An incompatible destination is refused with
 * reasons, and then no state moves: the source has no agreement and refuses to save.
 */
@Timeout(240)
class BlkMigrationBetweenProcessesIT {
    private static final Path JAR = Path.of("target/outproc-examples.jar");
    private static final Path JAVA = Path.of(System.getProperty("java.home"), "bin", "java");
    private static final long DISK = 8L << 20;
    private static final int BLOCK = 4096;
    private final List<Process> started = new ArrayList<>();

    @TempDir
    Path dir;

    @AfterEach
    void stop() throws InterruptedException {
        for (Process p : started) {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static List<String> jar(String... args) {
        List<String> c = new ArrayList<>(List.of(JAVA.toString(), "--enable-native-access=ALL-UNNAMED", "-jar", JAR.toString()));
        c.addAll(List.of(args));
        return c;
    }

    private Path image() throws IOException {
        Path image = dir.resolve("disk.img");
        if (!Files.exists(image)) {
            try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                f.write(ByteBuffer.allocate(1), DISK - 1);
            }
        }
        return image;
    }

    /** Starts a back-end as documented and waits until both its sockets exist. */
    private void backend(String name, String... extra) throws Exception {
        List<String> c = jar("vhost-user-blk", "--socket-path", dir.resolve(name + ".sock").toString(), "--image", image().toString(),
                "--migration-socket", dir.resolve(name + ".migration").toString());
        c.addAll(List.of(extra));
        Process p = new ProcessBuilder(c).redirectErrorStream(true).redirectOutput(dir.resolve(name + ".log").toFile()).start();
        started.add(p);
        for (int i = 0; i < 300 && !(Files.exists(dir.resolve(name + ".sock")) && Files.exists(dir.resolve(name + ".migration"))); i++) {
            assertTrue(p.isAlive(), () -> name + " exited: " + log(name));
            Thread.sleep(100);
        }
        assertTrue(Files.exists(dir.resolve(name + ".migration")), () -> name + " never listened: " + log(name));
    }

    private String log(String name) {
        try {
            return Files.readString(dir.resolve(name + ".log"));
        } catch (IOException e) {
            return e.toString();
        }
    }

    private record Relay(int status, String out) {}

    /** The documented handshake command, as a process. */
    private Relay relay(String source, String destination) throws Exception {
        Process p = new ProcessBuilder(jar("migration", "relay", "--source", "unix:" + dir.resolve(source + ".migration"),
                "--destination", "unix:" + dir.resolve(destination + ".migration"))).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return new Relay(p.exitValue(), out);
    }

    private static void verifyAll(VirtioBlkDriver blk, Map<Long, byte[]> written, String when) throws IOException {
        byte[] back = new byte[BLOCK];
        for (Map.Entry<Long, byte[]> e : written.entrySet()) {
            assertEquals(0, blk.read(e.getKey(), back), when);
            assertArrayEquals(e.getValue(), back, when + ": sector " + e.getKey());
        }
    }

    private static void writeRandom(VirtioBlkDriver blk, SplittableRandom random, Map<Long, byte[]> written, int count) throws IOException {
        for (int i = 0; i < count; i++) {
            long sector = (long) random.nextInt((int) (DISK / BLOCK)) * (BLOCK / 512);
            byte[] data = new byte[BLOCK];
            random.nextBytes(data);
            assertEquals(0, blk.write(sector, data));
            written.put(sector, data);
        }
    }

    @Test
    void aCompatiblePairShouldMigrateThereAndBackThroughTheRelayCommand() throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        backend("a");
        backend("b");
        VhostUserFrontend fe = VhostUserFrontend.connect(dir.resolve("a.sock"));
        try (VirtioBlkDriver blk = VirtioBlkDriver.start(fe, 1, BLOCK, false)) {
            Map<Long, byte[]> written = new HashMap<>();
            writeRandom(blk, random, written, 30);
            blk.flush();

            Relay there = relay("a", "b");
            assertEquals(0, there.status(), there.out());
            assertTrue(there.out().contains("\"agreed\":true") && there.out().contains("\"formatVersion\":2"), there.out());
            // Both back-ends serve one image: the disk needs no copy, only the device state moves.
            StateTransfer.Outcome toB = StateTransfer.move(blk, fe, dir.resolve("b.sock"), () -> { });
            assertTrue(toB.stream().length > 0, "the source saved a stream");
            verifyAll(blk, written, "seed=" + seed + " at b");
            writeRandom(blk, random, written, 30);
            blk.flush();

            Relay back = relay("b", "a");
            assertEquals(0, back.status(), back.out());
            StateTransfer.Outcome toA = StateTransfer.move(blk, toB.frontend(), dir.resolve("a.sock"), () -> { });
            verifyAll(blk, written, "seed=" + seed + " back at a");
            toA.frontend().close();
        }
    }

    @Test
    void anIncompatiblePairShouldBeRefusedWithReasonsAndNoStateMoved() throws Exception {
        backend("a");
        backend("c", "--queues", "2");
        VhostUserFrontend fe = VhostUserFrontend.connect(dir.resolve("a.sock"));
        try (VirtioBlkDriver blk = VirtioBlkDriver.start(fe, 1, BLOCK, false)) {
            assertEquals(0, blk.write(0, new byte[BLOCK]));
            Relay r = relay("a", "c");
            assertEquals(1, r.status(), r.out());
            assertTrue(r.out().contains("\"agreed\":false") && r.out().contains("\"refusedBy\":\"destination\"")
                    && r.out().contains("\"code\":\"PARAMETER_MISMATCH\",\"subject\":\"num_queues\""), r.out());
            // No agreement: the source refuses to save, so no state can move.
            IOException e = assertThrows(IOException.class, () -> StateTransfer.move(blk, fe, dir.resolve("c.sock"), () -> {
                throw new AssertionError("the disk must not be copied for a refused migration");
            }));
            assertTrue(e instanceof FrontendException || e.getMessage().contains("CHECK_DEVICE_STATE"), e.toString());
        }
        assertTrue(log("a").contains("no migration handshake"), log("a"));
    }

    @Test
    void printCapabilitiesShouldCarryTheMigrationDescriptor() throws Exception {
        Process p = new ProcessBuilder(jar("vhost-user-blk", "--print-capabilities", "--image", image().toString())).redirectErrorStream(true).start();
        String out;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            out = String.join("\n", r.lines().toList());
        }
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("\"type\" : \"block\"") && out.contains("\"migration\"") && out.contains("\"model\" : \"virtio-spec.org/pci/virtio-blk\"")
                && out.contains("\"capacity\" : \"" + DISK / 512 + "\"") && out.contains("\"write\" : [ 1, 2 ]"), out);
    }
}
