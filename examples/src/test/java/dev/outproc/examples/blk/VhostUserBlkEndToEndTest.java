package dev.outproc.examples.blk;

import dev.outproc.core.virtio.blk.VirtioBlk;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Our front-end (a virtio-blk driver) against our vhost-user-blk back-end, over a real socket and memfd memory. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class VhostUserBlkEndToEndTest {
    @TempDir
    Path dir;

    private static final long IMAGE_BYTES = 16L << 20;

    private VhostUserServer serve(Path socket, BlockStore store) throws Exception {
        VirtioBlkDevice device = new VirtioBlkDevice(store, 1, 256, "e2e-serial");
        VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket);
        Thread.ofPlatform().daemon(true).name("blk-server").start(server::run);
        return server;
    }

    @ParameterizedTest(name = "packed={0} seed={1}")
    @CsvSource({"false, 1", "true, 2"})
    void writtenBlocksShouldReadBackAndLandInTheImage(boolean packed, long seedOffset) throws Exception {
        long seed = System.nanoTime() + seedOffset;
        Path image = dir.resolve("disk.img");
        try (var f = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            f.truncate(0);
            f.write(java.nio.ByteBuffer.allocate(1), IMAGE_BYTES - 1);
        }
        Path socket = dir.resolve("blk.sock");
        SplittableRandom random = new SplittableRandom(seed);
        try (FileBlockStore store = FileBlockStore.open(image, false);
             VhostUserServer server = serve(socket, store);
             VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(socket), 1, 64 * 1024, packed)) {
            assertEquals(packed, (blk.features() & (1L << 34)) != 0, "packed ring negotiated as asked");
            assertEquals(IMAGE_BYTES / 512, blk.capacitySectors());
            assertEquals("e2e-serial", blk.getId());
            byte[][] written = new byte[64][];
            long[] sectors = new long[64];
            for (int i = 0; i < written.length; i++) {
                int blocks = 1 + random.nextInt(16);
                written[i] = new byte[blocks * 512];
                random.nextBytes(written[i]);
                sectors[i] = i * 128L; // disjoint 64 KiB areas
                assertEquals(0, blk.write(sectors[i], written[i]), "seed=" + seed);
            }
            assertEquals(0, blk.flush());
            for (int i = 0; i < written.length; i++) {
                byte[] back = new byte[written[i].length];
                assertEquals(0, blk.read(sectors[i], back), "seed=" + seed);
                assertArrayEquals(written[i], back, "seed=" + seed + " block " + i);
            }
            byte[] onDisk = Files.readAllBytes(image);
            for (int i = 0; i < written.length; i++) {
                int at = (int) (sectors[i] * 512);
                assertArrayEquals(written[i], Arrays.copyOfRange(onDisk, at, at + written[i].length), "seed=" + seed);
            }
        }
    }

    @Test
    void errorsShouldBeReportedWithStatusValues() throws Exception {
        Path socket = dir.resolve("err.sock");
        try (MemoryBlockStore store = new MemoryBlockStore(IMAGE_BYTES, false);
             VhostUserServer server = serve(socket, store);
             VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(socket), 1, 8192, false)) {
            byte[] block = new byte[512];
            assertEquals(VirtioBlk.S_IOERR, blk.write(IMAGE_BYTES / 512, block), "write past the end");
            assertEquals(VirtioBlk.S_IOERR, blk.read(IMAGE_BYTES / 512 - 1, new byte[1024]), "read across the end");
            assertEquals(VirtioBlk.S_IOERR, blk.write(0, new byte[100]), "not a multiple of 512");
            blk.submit(0, 99, 0, 0, false);
            blk.kick();
            assertEquals(VirtioBlk.S_UNSUPP, blk.status(blk.awaitCompletion()), "unknown request type");
            byte[] ones = new byte[4096];
            Arrays.fill(ones, (byte) 1);
            assertEquals(0, blk.write(8, ones));
            assertEquals(0, blk.zeroRange(VirtioBlkDriver.T_WRITE_ZEROES, 9, 2));
            byte[] back = new byte[4096];
            assertEquals(0, blk.read(8, back));
            for (int i = 0; i < back.length; i++) {
                boolean zeroed = i >= 512 && i < 1536;
                assertEquals(zeroed ? 0 : 1, back[i], "byte " + i);
            }
            assertTrue(device(store) >= 0);
        }
    }

    private static long device(MemoryBlockStore store) {
        return store.sizeBytes();
    }

    @Test
    void readOnlyShouldRefuseWrites() throws Exception {
        Path socket = dir.resolve("ro.sock");
        try (MemoryBlockStore store = new MemoryBlockStore(IMAGE_BYTES, true);
             VhostUserServer server = serve(socket, store);
             VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(socket), 1, 8192, false)) {
            assertTrue((blk.features() & (1L << VirtioBlk.F_RO)) != 0, "VIRTIO_BLK_F_RO offered");
            assertEquals(VirtioBlk.S_IOERR, blk.write(0, new byte[512]));
            assertEquals(0, blk.read(0, new byte[512]));
        }
    }

    @Test
    void shouldServeFrontEndAfterFrontEnd() throws Exception {
        Path socket = dir.resolve("again.sock");
        try (MemoryBlockStore store = new MemoryBlockStore(IMAGE_BYTES, false);
             VhostUserServer server = serve(socket, store)) {
            byte[] data = new byte[4096];
            new SplittableRandom(3).nextBytes(data);
            try (VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(socket), 1, 8192, false)) {
                assertEquals(0, blk.write(100, data));
            }
            for (int round = 0; round < 3; round++) {
                try (VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(socket), 1, 8192, round % 2 == 1)) {
                    byte[] back = new byte[4096];
                    assertEquals(0, blk.read(100, back));
                    assertArrayEquals(data, back, "round " + round);
                }
            }
            assertTrue(server.connections() >= 4);
        }
    }
}
