package dev.outproc.examples.interop;

import dev.outproc.examples.blk.FileBlockStore;
import dev.outproc.examples.blk.VirtioBlkDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.interop.Peers;
import dev.outproc.vhost.interop.QemuVm;
import dev.outproc.vhost.interop.StorageDaemon;
import dev.outproc.vhost.interop.TinyGuest;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;


import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QEMU (TCG) as the front-end of outproc's vhost-user-blk back-end: a small Linux guest writes a
 * random pattern to {@code /dev/vda} with O_DIRECT, reads it back, prints its SHA-256 and powers off;
 * the test compares the checksum and the image file's bytes.
 */
class BlkBackendWithQemuIT {
    private static final long IMAGE_SIZE = 16L << 20;
    private static final int PATTERN_SIZE = 1 << 20;
    private static final int BLOCK = 4096;

    @ParameterizedTest(name = "{0} queue(s)")
    @ValueSource(ints = {1, 2})
    void guestIoShouldReachTheImageThroughOurBackend(int queues) throws Exception {
        Peers.require(Peers.QEMU_SYSTEM);
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
        Path dir = Peers.workDirectory("BlkBackendWithQemuIT-" + queues);
        Path image = dir.resolve("disk.img");
        StorageDaemon.createRawImage(image, IMAGE_SIZE);
        Path socket = Peers.socketPath(dir, "outproc-blk.sock");
        try (FileBlockStore store = FileBlockStore.open(image, false)) {
            VirtioBlkDevice device = new VirtioBlkDevice(store, queues, 256, "qemu-it");
            try (VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(queues, false), socket)) {
                Thread.ofPlatform().daemon(true).name("blk-it-server").start(server::run);
                QemuVm.Result run = QemuVm.builder(guest, dir).vhostUserBlk(socket, queues).run();
                String context = "seed=" + seed + "; " + run;
                System.out.printf("QEMU guest -> outproc vhost-user-blk (%d queue(s)): 1 MiB O_DIRECT write+read, boot to poweroff %d ms%n",
                        queues, run.elapsed().toMillis());
                assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + context);
                var lines = run.between().lines().map(String::strip).toList();
                assertEquals(2, lines.size(), () -> "guest output lines; " + context);
                assertEquals("sectors " + IMAGE_SIZE / 512, lines.get(0), () -> "capacity; " + context);
                assertEquals("sha256 " + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(pattern)) + "  -",
                        lines.get(1), () -> "read-back checksum; " + context);
                assertTrue(device.writes.get() > 0 && device.reads.get() > 0, () -> "the device served the I/O; " + context);
            }
        }
        byte[] onDisk = new byte[PATTERN_SIZE];
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.wrap(onDisk);
            while (b.hasRemaining() && f.read(b, offsetBlocks * BLOCK + b.position()) >= 0) {
                // read until full
            }
        }
        assertArrayEquals(pattern, onDisk, () -> "image bytes, seed=" + seed);
    }

}
