package dev.outproc.examples.interop;

import dev.outproc.vfio.interop.QemuVfioUserPeer;
import dev.outproc.vhost.interop.Peers;
import dev.outproc.vhost.interop.QemuVm;
import dev.outproc.vhost.interop.TinyGuest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Linux guest under QEMU 10.x ({@code vfio-user-pci}, TCG) drives {@code vfio-user-virtio-blk}, started
 * as its own process from the documented command line, with the kernel's own virtio-pci and virtio-blk
 * drivers: the first guest finds the device as {@code /dev/vda}, writes a random pattern with O_DIRECT,
 * reads it back and prints its SHA-256; the test checks the checksum and the image's bytes. A second guest,
 * booted against the same server process (which reset the device when the first QEMU went), reads the
 * pattern back.
 */
@Timeout(600)
class VfioUserBlkWithQemuIT {
    private static final Path JAR = Path.of("target/outproc-examples.jar");
    private static final Path JAVA = Path.of(System.getProperty("java.home"), "bin", "java");
    private static final long IMAGE_SIZE = 16L << 20;
    private static final int PATTERN_SIZE = 1 << 20;
    private static final int BLOCK = 4096;
    private final List<Process> started = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        for (Process p : started) {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void guestShouldSeeVdaWriteAndReadItAndASecondGuestShouldReadWhatTheFirstWrote() throws Exception {
        Path qemu = QemuVfioUserPeer.require();
        long seed = new SplittableRandom().nextLong();
        SplittableRandom random = new SplittableRandom(seed);
        byte[] pattern = new byte[PATTERN_SIZE];
        random.nextBytes(pattern);
        long offsetBlocks = random.nextLong(1, (IMAGE_SIZE - PATTERN_SIZE) / BLOCK);
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(pattern)) + "  -";
        String identify = """
                for d in /sys/bus/pci/devices/*; do
                  if [ "$(cat $d/vendor)" = 0x1af4 ]; then echo "pci $(cat $d/device) $(basename $(readlink $d/driver))"; fi
                done
                """;
        TinyGuest writer = TinyGuest.builder("""
                wait_for_block /dev/vda || { dmesg | tail -40; hexdump -C /sys/bus/pci/devices/0000:00:02.0/config; cat /proc/interrupts; exit 1; }
                dd if=/data/pattern of=/dev/vda bs=%1$d seek=%2$d oflag=direct conv=fsync 2>/dev/null || echo "write failed"
                begin_output
                %4$s
                echo "sectors $(cat /sys/block/vda/size)"
                echo "sha256 $(dd if=/dev/vda bs=%1$d skip=%2$d count=%3$d iflag=direct 2>/dev/null | sha256sum)"
                end_output
                """.formatted(BLOCK, offsetBlocks, PATTERN_SIZE / BLOCK, identify))
                .modules(TinyGuest.BLK_MODULES)
                .file("/data/pattern", pattern)
                .build();
        TinyGuest reader = TinyGuest.builder("""
                wait_for_block /dev/vda || { dmesg | tail -40; hexdump -C /sys/bus/pci/devices/0000:00:02.0/config; cat /proc/interrupts; exit 1; }
                begin_output
                %4$s
                echo "sectors $(cat /sys/block/vda/size)"
                echo "sha256 $(dd if=/dev/vda bs=%1$d skip=%2$d count=%3$d iflag=direct 2>/dev/null | sha256sum)"
                end_output
                """.formatted(BLOCK, offsetBlocks, PATTERN_SIZE / BLOCK, identify))
                .modules(TinyGuest.BLK_MODULES)
                .build();
        Path dir = Peers.workDirectory("VfioUserBlkWithQemuIT");
        Path image = dir.resolve("disk.img");
        Files.deleteIfExists(image);
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.allocate(1), IMAGE_SIZE - 1);
        }
        Path socket = Peers.socketPath(dir, "vfio-blk.sock");
        Files.deleteIfExists(socket);
        Process server = startServer(socket, image, dir.resolve("server.log"));
        List<String> expected = List.of("pci 0x1042 virtio-pci", "sectors " + IMAGE_SIZE / 512, "sha256 " + sha);

        QemuVm.Result first = boot(qemu, writer, dir, socket, "first");
        String context1 = "seed=" + seed + "; " + first + "; server log: " + Files.readString(dir.resolve("server.log"));
        System.out.printf("QEMU 10.x guest -> outproc vfio-user-virtio-blk: 1 MiB O_DIRECT write+read, boot to poweroff %d ms%n",
                first.elapsed().toMillis());
        assertTrue(first.poweredOff(), () -> "first guest did not power off cleanly: " + context1);
        assertEquals(expected, first.between().lines().map(String::strip).toList(), () -> "first guest's output; " + context1);
        byte[] onDisk = new byte[PATTERN_SIZE];
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.wrap(onDisk);
            while (b.hasRemaining() && f.read(b, offsetBlocks * BLOCK + b.position()) >= 0) {
                // read until full
            }
        }
        assertArrayEquals(pattern, onDisk, () -> "image bytes after the first guest, seed=" + seed);

        assertTrue(server.isAlive(), () -> "the server outlived the first client; " + context1);
        QemuVm.Result second = boot(qemu, reader, dir, socket, "second");
        String context2 = "seed=" + seed + "; " + second + "; server log: " + Files.readString(dir.resolve("server.log"));
        System.out.printf("second guest against the same server process: boot to poweroff %d ms%n", second.elapsed().toMillis());
        assertTrue(second.poweredOff(), () -> "second guest did not power off cleanly: " + context2);
        assertEquals(expected, second.between().lines().map(String::strip).toList(), () -> "second guest's output; " + context2);
        assertTrue(server.isAlive(), () -> "the server serves on; " + context2);
    }

    /** Starts {@code vfio-user-virtio-blk} as documented and waits for its socket. */
    private Process startServer(Path socket, Path image, Path log) throws Exception {
        Process p = new ProcessBuilder(JAVA.toString(), "--enable-native-access=ALL-UNNAMED", "-jar", JAR.toString(),
                "vfio-user-virtio-blk", "--socket-path", socket.toString(), "--image", image.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        started.add(p);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(Files.exists(socket), () -> "the server listens; log: " + read(log));
        return p;
    }

    private static QemuVm.Result boot(Path qemu, TinyGuest guest, Path dir, Path socket, String name) throws IOException {
        return QemuVm.builder(guest, dir).executable(qemu).machine("pc").name(name)
                .args(QemuVfioUserPeer.FIRMWARE_ARGS.toArray(String[]::new))
                .args("-device", "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"" + socket.toAbsolutePath() + "\",\"type\":\"unix\"}}")
                .run();
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(" + e.getMessage() + ")";
        }
    }
}
