package dev.outproc.vhost.interop;

import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * outproc's front-end against a real back-end: qemu-storage-daemon exports a raw image as
 * vhost-user-blk; the {@link VirtioBlkDriver} negotiates, shares memfd memory, writes random blocks,
 * reads them back and the test compares checksums with the image file itself.
 */
class FrontendAgainstStorageDaemonIT {
    private static final long IMAGE_SIZE = 32L << 20;
    private static final int BLOCK = 4096;

    @ParameterizedTest(name = "depth {0}")
    @ValueSource(ints = {1, 16})
    void randomBlocksShouldReachTheImage(int depth) throws IOException {
        long seed = new SplittableRandom().nextLong();
        SplittableRandom random = new SplittableRandom(seed);
        var dir = Peers.workDirectory("FrontendAgainstStorageDaemonIT-" + depth);
        try (StorageDaemon qsd = StorageDaemon.builder(dir).sizeBytes(IMAGE_SIZE).start();
             VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.connect(qsd.socket()), depth, BLOCK, false)) {
            String context = "seed=" + seed + "; qsd: " + qsd.describe();
            assertEquals(IMAGE_SIZE / 512, blk.capacitySectors(), () -> "GET_CONFIG capacity; " + context);
            int blocks = (int) (IMAGE_SIZE / BLOCK);
            long[] crcs = new long[blocks];
            boolean[] written = new boolean[blocks];
            int[] blockOfSlot = new int[depth];
            CRC32C crc = new CRC32C();
            byte[] data = new byte[BLOCK];
            int total = 512;
            int submitted = 0;
            int completed = 0;
            for (int slot = 0; slot < depth && submitted < total; slot++, submitted++) {
                blockOfSlot[slot] = fill(blk, slot, random.nextInt(blocks), random, data, crc, crcs, written);
            }
            blk.kick();
            while (completed < total) {
                int slot = blk.awaitCompletion();
                completed++;
                assertEquals(0, blk.status(slot), () -> "write status; " + context);
                if (submitted < total) {
                    blockOfSlot[slot] = fill(blk, slot, random.nextInt(blocks), random, data, crc, crcs, written);
                    submitted++;
                    blk.kick();
                }
            }
            assertEquals(0, blk.flush(), () -> "flush; " + context);
            byte[] back = new byte[BLOCK];
            int checked = 0;
            try (FileChannel image = FileChannel.open(qsd.image(), StandardOpenOption.READ)) {
                for (int b = 0; b < blocks; b++) {
                    if (!written[b]) {
                        continue;
                    }
                    assertEquals(0, blk.read((long) b * BLOCK / 512, back), () -> "read status; " + context);
                    crc.reset();
                    crc.update(back);
                    final int block = b;
                    assertEquals(crcs[b], crc.getValue(), () -> "read-back checksum of block " + block + "; " + context);
                    ByteBuffer fromFile = ByteBuffer.allocate(BLOCK);
                    image.read(fromFile, (long) b * BLOCK);
                    crc.reset();
                    crc.update(fromFile.flip());
                    assertEquals(crcs[b], crc.getValue(), () -> "image checksum of block " + block + "; " + context);
                    checked++;
                }
            }
            assertTrue(checked > 0);
            System.out.printf("outproc front-end -> qemu-storage-daemon: %d writes (depth %d), %d blocks verified in the image%n",
                    total, depth, checked);
        }
    }

    private static int fill(VirtioBlkDriver blk, int slot, int block, SplittableRandom random, byte[] data, CRC32C crc,
                            long[] crcs, boolean[] written) throws IOException {
        random.nextBytes(data);
        crc.reset();
        crc.update(data);
        crcs[block] = crc.getValue();
        written[block] = true;
        java.lang.foreign.MemorySegment.copy(data, 0, blk.data(slot), java.lang.foreign.ValueLayout.JAVA_BYTE, 0, data.length);
        blk.submit(slot, VirtioBlkDriver.T_OUT, (long) block * BLOCK / 512, BLOCK, false);
        return block;
    }

    @Test
    void probeOfFeaturesShouldMatchWhatQsdOffers() throws IOException {
        var dir = Peers.workDirectory("FrontendAgainstStorageDaemonIT-features");
        try (StorageDaemon qsd = StorageDaemon.builder(dir).sizeBytes(IMAGE_SIZE).start();
             VhostUserFrontend fe = VhostUserFrontend.connect(qsd.socket())) {
            long features = fe.getFeatures();
            assertTrue((features & (1L << 32)) != 0, "VERSION_1");
            assertTrue((features & (1L << 30)) != 0, "F_PROTOCOL_FEATURES");
            long protocol = fe.getProtocolFeatures();
            assertTrue((protocol & (1L << 9)) != 0, "CONFIG");
        }
    }
}
