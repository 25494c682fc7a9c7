package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * QEMU as vhost-user front-end, qemu-storage-daemon as back-end, the {@link TinyGuest} as driver:
 * the guest writes a random pattern to {@code /dev/vda} with O_DIRECT, reads it back and prints its
 * SHA-256; the test checks that checksum and the bytes in the image file. This fixes the guest build
 * and the QEMU command line, so that outproc's back-end can take qemu-storage-daemon's place.
 */
class QemuStorageDaemonBlkIT {

    private static final long IMAGE_SIZE = 16L << 20;
    private static final int PATTERN_SIZE = 1 << 20;
    private static final int BLOCK = 4096;

    @Test
    void guestWritesThroughVhostUserBlkIntoTheImage() throws IOException {
        long seed = new SplittableRandom().nextLong();
        SplittableRandom random = new SplittableRandom(seed);
        byte[] pattern = new byte[PATTERN_SIZE];
        random.nextBytes(pattern);
        long offsetBlocks = random.nextLong(1, (IMAGE_SIZE - PATTERN_SIZE) / BLOCK);

        TinyGuest guest = TinyGuest.builder("""
                wait_for_block /dev/vda || exit 1
                dd if=/data/pattern of=/dev/vda bs=%1$d seek=%2$d oflag=direct conv=fsync 2>/dev/null || echo "write failed"
                begin_output
                echo "sectors $(cat /sys/block/vda/size)"
                echo "sha256 $(dd if=/dev/vda bs=%1$d skip=%2$d count=%3$d iflag=direct 2>/dev/null | sha256sum)"
                end_output
                """.formatted(BLOCK, offsetBlocks, PATTERN_SIZE / BLOCK))
                .modules(TinyGuest.BLK_MODULES)
                .file("/data/pattern", pattern)
                .build();

        var dir = Peers.workDirectory("QemuStorageDaemonBlkIT");
        try (StorageDaemon qsd = StorageDaemon.builder(dir).sizeBytes(IMAGE_SIZE).start()) {
            QemuVm.Result run = QemuVm.builder(guest, dir).vhostUserBlk(qsd.socket(), 1).run();
            System.out.printf("tiny guest with vhost-user-blk (qemu-storage-daemon), 1 MiB O_DIRECT write+read, "
                    + "boot to poweroff: %d ms%n  qemu: %s%n  qsd: %s%n", run.elapsed().toMillis(),
                    run.commandLine(), qsd.commandLine());
            String context = "seed=" + seed + "; " + run + "\n qsd: " + qsd.describe();
            assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + context);

            String expected = sha256Hex(pattern);
            var lines = run.between().lines().map(String::strip).toList();
            assertEquals(2, lines.size(), () -> "guest output lines; " + context);
            assertEquals("sectors " + IMAGE_SIZE / 512, lines.get(0), () -> "disk capacity; " + context);
            assertEquals("sha256 " + expected + "  -", lines.get(1), () -> "read-back checksum; " + context);

            byte[] onDisk = new byte[PATTERN_SIZE];
            try (FileChannel image = FileChannel.open(qsd.image(), StandardOpenOption.READ)) {
                ByteBuffer buf = ByteBuffer.wrap(onDisk);
                long position = offsetBlocks * BLOCK;
                while (buf.hasRemaining()) {
                    if (image.read(buf, position + buf.position()) < 0) {
                        break;
                    }
                }
            }
            assertArrayEquals(pattern, onDisk, () -> "image bytes at block " + offsetBlocks + ", seed=" + seed);
        }
    }

    private static String sha256Hex(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is mandatory in every JDK", e);
        }
    }
}
