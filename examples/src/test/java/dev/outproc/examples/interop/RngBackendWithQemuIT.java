package dev.outproc.examples.interop;

import dev.outproc.examples.rng.VirtioRngDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.interop.Peers;
import dev.outproc.vhost.interop.QemuVm;
import dev.outproc.vhost.interop.TinyGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QEMU (TCG) with {@code -device vhost-user-rng-pci} as the front-end of the guide's second worked
 * example, the virtio-rng device: a small Linux guest reads 64 KiB from {@code /dev/hwrng}, which the
 * kernel's virtio-rng driver fills through our back-end.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class RngBackendWithQemuIT {
    private static final int READ_BYTES = 64 * 1024;

    @Test
    void guestShouldReadHwrngThroughOurBackend() throws Exception {
        Peers.require(Peers.QEMU_SYSTEM);
        TinyGuest guest = TinyGuest.builder("""
                n=0; while [ ! -c /dev/hwrng ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
                dd if=/dev/hwrng of=/tmp/random bs=4096 count=%d 2>/dev/null
                begin_output
                echo "rng $(cat /sys/class/misc/hw_random/rng_current)"
                echo "bytes $(wc -c < /tmp/random)"
                echo "nonzero $(tr -d '\\000' < /tmp/random | wc -c)"
                end_output
                """.formatted(READ_BYTES / 4096))
                .modules(Stream.concat(TinyGuest.BLK_MODULES.stream().filter(m -> !m.equals("virtio_blk")),
                        Stream.of("virtio-rng")).toList())
                .build();
        Path dir = Peers.workDirectory("RngBackendWithQemuIT");
        Path socket = Peers.socketPath(dir, "outproc-rng.sock");
        VirtioRngDevice device = new VirtioRngDevice();
        try (VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket)) {
            Thread.ofPlatform().daemon(true).name("rng-qemu-it-server").start(server::run);
            QemuVm.Result run = QemuVm.builder(guest, dir)
                    .args("-chardev", "socket,id=rng0,path=" + socket, "-device", "vhost-user-rng-pci,chardev=rng0")
                    .run();
            String context = run + "; device served " + device.bytesServed() + " bytes";
            System.out.printf("QEMU guest -> outproc vhost-user-rng: %d bytes served, boot to poweroff %d ms%n",
                    device.bytesServed(), run.elapsed().toMillis());
            assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + context);
            List<String> lines = run.between().lines().map(String::strip).toList();
            assertEquals(3, lines.size(), () -> "guest output lines; " + context);
            assertTrue(lines.get(0).startsWith("rng virtio_rng"), () -> "the guest uses the virtio-rng device; " + context);
            assertEquals("bytes " + READ_BYTES, lines.get(1), () -> context);
            long nonzero = Long.parseLong(lines.get(2).substring("nonzero ".length()));
            // Random bytes are zero with probability 1/256: 64 KiB hold about 256 zeroes, never thousands.
            assertTrue(nonzero > READ_BYTES - 2048, () -> "the bytes are not zero-filled; " + context);
            assertTrue(device.bytesServed() >= READ_BYTES, () -> context);
        }
    }
}
