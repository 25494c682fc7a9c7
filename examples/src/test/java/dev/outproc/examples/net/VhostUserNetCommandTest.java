package dev.outproc.examples.net;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.outproc.examples.testing.CommandRun;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code vhost-user-net} command line: help, capabilities, refused options. */
class VhostUserNetCommandTest {
    @Test
    void shouldHaveHelp() {
        CommandRun r = CommandRun.throughWriters("vhost-user-net", "--help");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("Usage: outproc-examples vhost-user-net"), r.out());
        assertTrue(r.out().contains("--mode"), r.out());
        assertTrue(r.out().contains("--stats-interval-ms"), r.out());
    }

    @Test
    void capabilitiesShouldBeTypeNetOnly() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        VhostUserNetCommand.printCapabilities(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        Map<String, String> fields = new LinkedHashMap<>();
        try (JsonParser p = new JsonFactory().createParser(bytes.toByteArray())) {
            assertEquals(JsonToken.START_OBJECT, p.nextToken());
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                fields.put(name, p.getText());
            }
        }
        assertEquals(Map.of("type", "net"), fields, bytes.toString(StandardCharsets.UTF_8));
    }

    @Test
    void shouldRefuseBadOptions() {
        CommandRun noSocket = CommandRun.throughWriters("vhost-user-net", "--mode", "sink");
        assertNotEquals(0, noSocket.status());
        assertTrue(noSocket.err().contains("--socket-path"), noSocket.err());
        CommandRun badMode = CommandRun.throughWriters("vhost-user-net", "--socket-path", "/nonexistent/x.sock", "--mode", "mirror");
        assertNotEquals(0, badMode.status());
        assertTrue(badMode.err().contains("mirror"), badMode.err());
        CommandRun badMac = CommandRun.throughWriters("vhost-user-net", "--socket-path", "/nonexistent/x.sock", "--mac", "52:54:00");
        assertNotEquals(0, badMac.status());
        assertTrue(badMac.err().contains("52:54:00"), badMac.err());
    }
}
