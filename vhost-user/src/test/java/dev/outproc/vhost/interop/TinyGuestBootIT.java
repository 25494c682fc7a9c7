package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * QEMU boots the {@link TinyGuest} with no vhost-user device: the kernel extraction, the initramfs,
 * the {@code /init} wrapper, the console capture and the marker parsing work on their own.
 */
class TinyGuestBootIT {

    @Test
    void shouldBootAndPrintWhatTheScriptComputed() throws IOException {
        long seed = new SplittableRandom().nextLong(1, 1L << 40);
        long a = seed % 100_000;
        long b = seed / 100_000 % 100_000;
        TinyGuest guest = TinyGuest.builder("""
                begin_output
                echo "sum $((%d + %d))"
                echo "kernel $(uname -r)"
                echo "file $(cat /data/greeting)"
                end_output
                """.formatted(a, b))
                .file("/data/greeting", ("hello " + seed).getBytes())
                .build();

        QemuVm.Result run = QemuVm.builder(guest, Peers.workDirectory("TinyGuestBootIT")).run();
        System.out.printf("tiny guest boot to poweroff: %d ms (no devices)%n", run.elapsed().toMillis());

        assertTrue(run.poweredOff(), () -> "guest did not power off cleanly: " + run);
        List<String> lines = run.between().lines().map(String::strip).toList();
        assertEquals(List.of("sum " + (a + b), "kernel " + guest.kernelVersion(), "file hello " + seed), lines,
                () -> "seed=" + seed + "; " + run);
        assertTrue(run.console().contains("outproc-guest: exit 0"), () -> "script status; " + run);
    }
}
