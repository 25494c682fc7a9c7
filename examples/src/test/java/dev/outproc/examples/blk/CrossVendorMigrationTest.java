package dev.outproc.examples.blk;

import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.migration.handshake.ReasonCode;
import dev.outproc.migration.model.Registry;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;


import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two implementations of one device model and format class (a file-backed and a memory-backed
 * virtio-blk back-end) migrate a running device to each other in both directions while the driver keeps
 * doing I/O; an incompatible destination is refused by the handshake before any state is sent.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CrossVendorMigrationTest {
    private static final long DISK = 8L << 20;
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;

    private static VhostUserServer serve(VirtioBlkDevice device, Path socket) throws Exception {
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread.ofPlatform().daemon(true).start(server::run);
        return server;
    }

    private static void writeRandom(VirtioBlkDriver blk, SplittableRandom random, Map<Long, byte[]> written, int count)
            throws Exception {
        for (int i = 0; i < count; i++) {
            long sector = (long) random.nextInt((int) (DISK / BLOCK)) * (BLOCK / 512);
            byte[] data = new byte[BLOCK];
            random.nextBytes(data);
            assertEquals(0, blk.write(sector, data));
            written.put(sector, data);
        }
    }

    private static void verifyAll(VirtioBlkDriver blk, Map<Long, byte[]> written, String when) throws Exception {
        byte[] back = new byte[BLOCK];
        for (Map.Entry<Long, byte[]> e : written.entrySet()) {
            assertEquals(0, blk.read(e.getKey(), back), when);
            assertArrayEquals(e.getValue(), back, when + ": sector " + e.getKey());
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void fileAndMemoryBackendsShouldMigrateToEachOtherWhileIoContinues(boolean packed) throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        Path image = dir.resolve("disk.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.allocate(1), DISK - 1);
        }
        BlkLiveMigration migration = new BlkLiveMigration(Registry.builtin());
        try (FileBlockStore fileStore = FileBlockStore.open(image, false);
             MemoryBlockStore memoryStore = new MemoryBlockStore(DISK, false)) {
            VirtioBlkDevice fileDevice = new VirtioBlkDevice(fileStore, 1, 256, "xv");
            VirtioBlkDevice memoryDevice = new VirtioBlkDevice(memoryStore, 1, 256, "xv");
            var a = new BlkLiveMigration.Endpoint(fileDevice, "outproc.dev/examples/file-blk", image.toString(), dir.resolve("a.sock"));
            var b = new BlkLiveMigration.Endpoint(memoryDevice, "outproc.dev/examples/memory-blk", "memory", dir.resolve("b.sock"));
            try (VhostUserServer serverA = serve(fileDevice, a.socket());
                 VhostUserServer serverB = serve(memoryDevice, b.socket())) {
                VhostUserFrontend first = VhostUserFrontend.connect(a.socket());
                VirtioBlkDriver blk = VirtioBlkDriver.start(first, 1, BLOCK, packed);
                Map<Long, byte[]> written = new HashMap<>();
                writeRandom(blk, random, written, 50);
                String context = "seed=" + seed;
                // Taken before the switch: the source device is reset once the front-end leaves it.
                long sourceFeatures = fileDevice.currentState().driverFeatures();

                BlkLiveMigration.Outcome toMemory = migration.migrate(blk, first, a, b,
                        () -> fileStore.read(0, memoryStore.contents()));
                assertTrue(toMemory.accepted(), () -> context + " " + toMemory.reasons());
                assertNotNull(memoryDevice.loadedState(), "the destination loaded the state");
                assertEquals(sourceFeatures, memoryDevice.loadedState().driverFeatures(),
                        "the destination loaded the features the source had negotiated");
                long writesOnFileBefore = fileDevice.writes.get();
                verifyAll(blk, written, context + " after file -> memory");
                writeRandom(blk, random, written, 50);
                assertEquals(writesOnFileBefore, fileDevice.writes.get(), "the source serves nothing after the switch");
                assertTrue(memoryDevice.writes.get() >= 50, "the destination serves the driver");

                BlkLiveMigration.Outcome toFile = migration.migrate(blk, toMemory.frontend(), b, a,
                        () -> fileStore.write(0, memoryStore.contents()));
                assertTrue(toFile.accepted(), () -> context + " " + toFile.reasons());
                verifyAll(blk, written, context + " after memory -> file");
                writeRandom(blk, random, written, 20);
                verifyAll(blk, written, context + " after more writes");
                blk.flush();
                try (FileChannel f = FileChannel.open(image, StandardOpenOption.READ)) {
                    for (Map.Entry<Long, byte[]> e : written.entrySet()) {
                        ByteBuffer onDisk = ByteBuffer.allocate(BLOCK);
                        f.read(onDisk, e.getKey() * 512);
                        assertArrayEquals(e.getValue(), onDisk.array(), context + " image at sector " + e.getKey());
                    }
                }
                toFile.frontend().close();
                blk.close();
            }
        }
    }

    @Test
    void incompatibleDestinationShouldBeRefusedBeforeAnyStateMoves() throws Exception {
        try (MemoryBlockStore source = new MemoryBlockStore(DISK, false);
             MemoryBlockStore readOnly = new MemoryBlockStore(DISK, true);
             MemoryBlockStore smaller = new MemoryBlockStore(DISK / 2, false)) {
            VirtioBlkDevice src = new VirtioBlkDevice(source, 1, 256, "s");
            VirtioBlkDevice ro = new VirtioBlkDevice(readOnly, 1, 256, "r");
            VirtioBlkDevice small = new VirtioBlkDevice(smaller, 1, 256, "m");
            BlkLiveMigration migration = new BlkLiveMigration(Registry.builtin());
            var a = new BlkLiveMigration.Endpoint(src, "outproc.dev/examples/memory-blk", "memory", dir.resolve("s.sock"));
            for (VirtioBlkDevice bad : new VirtioBlkDevice[] {ro, small}) {
                var c = new BlkLiveMigration.Endpoint(bad, "outproc.dev/examples/memory-blk", "memory", dir.resolve("c.sock"));
                try (VhostUserServer server = serve(src, a.socket()); VhostUserServer cServer = serve(bad, c.socket())) {
                    VhostUserFrontend fe = VhostUserFrontend.connect(a.socket());
                    try (VirtioBlkDriver blk = VirtioBlkDriver.start(fe, 1, BLOCK, false)) {
                        assertEquals(0, blk.write(0, new byte[BLOCK]));
                        BlkLiveMigration.Outcome outcome = migration.migrate(blk, fe, a, c, () -> {
                            throw new AssertionError("the disk must not be copied for a refused migration");
                        });
                        assertFalse(outcome.accepted());
                        assertFalse(outcome.reasons().isEmpty());
                        assertTrue(outcome.reasons().stream().map(Incompatibility::code).anyMatch(
                                code -> code == ReasonCode.PARAMETER_MISMATCH || code == ReasonCode.PARAMETER_NOT_ALLOWED),
                                outcome.reasons()::toString);
                        assertNull(bad.loadedState(), "no state reached the refused destination");
                        assertEquals(0, cServer.connections(), "the front-end never connected to the refused destination");
                        // The source keeps serving.
                        assertEquals(0, blk.write(8, new byte[BLOCK]));
                    }
                }
            }
        }
    }

}
