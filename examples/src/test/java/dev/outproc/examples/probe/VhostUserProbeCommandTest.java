package dev.outproc.examples.probe;

import dev.outproc.examples.Main;
import dev.outproc.examples.rng.VirtioRngDevice;
import dev.outproc.examples.testing.CommandRun;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code vhost-user-probe} as a general tool: any device, short errors, readable help. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class VhostUserProbeCommandTest {
    @TempDir
    Path dir;

    @Test
    void shouldPostWritableBuffersOnAnyDevice() throws Exception {
        Path socket = dir.resolve("rng.sock");
        VirtioRngDevice device = new VirtioRngDevice();
        try (VhostUserServer server = VhostUserServer.listen(device, new VhostUserBackend.Options(1, false), socket)) {
            Thread.ofPlatform().daemon(true).start(server::run);
            CommandRun r = CommandRun.of("vhost-user-probe", "--socket-path", socket.toString(), "--read-queue", "0", "--count", "3",
                    "--buffer-bytes", "100");
            assertEquals(0, r.status(), r.out() + r.err());
            assertTrue(r.out().contains("queue 0: 3 buffers used, 300 bytes written"), r.out());
            assertEquals(300, device.bytesServed());
            assertTrue(r.out().contains("device bits: none"), "virtio-rng has no device feature bits: " + r.out());
        }
    }

    @Test
    void shouldSayInOneLineThatTheSocketIsMissing() {
        Path socket = dir.resolve("nothing-here.sock");
        CommandRun r = CommandRun.of("vhost-user-probe", "--socket-path", socket.toString());
        assertEquals(1, r.status());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vhost-user-probe: " + socket + ": ") && r.err().contains("ENOENT"), r.err());
    }

    @Test
    void helpShouldKeepEachDescriptionLineWhole() {
        StringWriter out = new StringWriter();
        CommandLine cl = Main.commandLine().setOut(new PrintWriter(out));
        assertEquals(0, cl.execute("vhost-user-probe", "--help"));
        String[] description = VhostUserProbeCommand.class.getAnnotation(CommandLine.Command.class).description();
        var lines = out.toString().lines().toList();
        for (String line : description) {
            if (!line.isEmpty()) {
                assertTrue(lines.contains(line), () -> "'" + line + "' wrapped in:\n" + out);
            }
        }
    }
}
