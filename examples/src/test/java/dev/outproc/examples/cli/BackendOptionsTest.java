package dev.outproc.examples.cli;

import dev.outproc.examples.Main;
import dev.outproc.vhost.backend.VhostUserBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shared back-end options of the example commands: access control and limits reach the library's options. */
class BackendOptionsTest {
    private static BackendOptions parse(String... args) {
        BackendOptions options = new BackendOptions();
        new CommandLine(options).parseArgs(args);
        return options;
    }

    @Test
    void theDefaultsShouldBeOwnerOnlyAnyPeerAndAHandshakeTimeout() {
        VhostUserBackend.Options o = parse("--socket-path", "/tmp/x.sock").backendOptions();
        assertEquals(PosixFilePermissions.fromString("rw-------"), o.socketMode());
        assertTrue(o.peers().admitsAnyone());
        assertEquals(Duration.ofSeconds(30), o.handshakeTimeout());
        assertEquals(VhostUserBackend.UnsealableMemory.ACCEPT_WITH_WARNING, o.unsealableMemory());
    }

    @Test
    void theAccessOptionsShouldReachTheBackEnd() {
        VhostUserBackend.Options o = parse("--socket-path", "/tmp/x.sock", "--socket-mode", "0660", "--allow-uid", "1000,1001",
                "--allow-gid", "27", "--handshake-timeout-ms", "1500", "--unsealable-memory", "REFUSE").backendOptions();
        assertEquals(PosixFilePermissions.fromString("rw-rw----"), o.socketMode());
        assertFalse(o.peers().admitsAnyone());
        assertEquals(Set.of(1000L, 1001L), o.peers().uids());
        assertEquals(Set.of(27L), o.peers().gids());
        assertEquals(Duration.ofMillis(1500), o.handshakeTimeout());
        assertEquals(VhostUserBackend.UnsealableMemory.REFUSE, o.unsealableMemory());
    }

    @Test
    void aBadModeShouldBeAUsageError() {
        assertNotNull(parse("--socket-path", "/tmp/x.sock", "--socket-mode", "rwx").missingSocket());
        assertNotNull(parse("--socket-path", "/tmp/x.sock", "--handshake-timeout-ms", "-1").missingSocket());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vhost-user-blk", "vhost-user-net", "vhost-user-rng"})
    void everyBackEndCommandShouldOfferThem(String command) {
        StringWriter out = new StringWriter();
        int status = Main.commandLine().setOut(new PrintWriter(out)).execute(command, "--help");
        assertEquals(0, status);
        for (String option : new String[] {"--socket-mode", "--allow-uid", "--allow-gid", "--handshake-timeout-ms",
                "--unsealable-memory"}) {
            assertTrue(out.toString().contains(option), command + " lacks " + option + ":\n" + out);
        }
    }
}
