package dev.outproc.vfio.message;

import dev.outproc.core.fd.Errno;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CapabilitiesTest {
    private static Capabilities parse(String json) throws VfioUserProtocolException {
        return Capabilities.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void shouldApplyTheSpecDefaultsForAbsentKeys() throws Exception {
        Capabilities c = parse("{\"capabilities\":{}}");
        assertEquals(1, c.maxMsgFds());
        assertEquals(1 << 20, c.maxDataXferSize());
        assertEquals(65535, c.maxDmaMaps());
        assertEquals(4096, c.pgsizes());
        assertFalse(c.writeMultiple());
        assertEquals(0, c.present());
    }

    @Test
    void shouldReadEveryKeyIncludingTwinSocketAndLegacyMigration() throws Exception {
        Capabilities c = parse("{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":65536,\"max_dma_maps\":10,"
                + "\"pgsizes\":12288,\"twin_socket\":{\"supported\":true,\"fd_index\":0},\"write_multiple\":true,"
                + "\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}}}");
        assertEquals(16, c.maxMsgFds());
        assertEquals(65536, c.maxDataXferSize());
        assertEquals(10, c.maxDmaMaps());
        assertEquals(12288, c.pgsizes());
        assertTrue(c.twinSocketSupported());
        assertEquals(0, c.twinSocketFdIndex());
        assertTrue(c.writeMultiple());
        assertEquals(4096, c.migrationPgsize());
        assertEquals(268435456, c.migrationMaxBitmapSize());
    }

    @Test
    void shouldSkipAndCountUnknownKeys() throws Exception {
        Capabilities c = parse("{\"capabilities\":{\"future_thing\":{\"a\":[1,2]},\"max_msg_fds\":4},\"extra\":1}");
        assertEquals(4, c.maxMsgFds());
        assertEquals(2, c.unknownKeys());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "[]", "{\"capabilities\":[]}", "{\"capabilities\":{\"max_msg_fds\":-1}}", "{\"capabilities\":{\"max_msg_fds\":254}}",
        "{\"capabilities\":{\"max_msg_fds\":\"8\"}}", "{\"capabilities\":{\"max_msg_fds\":1.5}}",
        "{\"capabilities\":{\"write_multiple\":1}}", "{\"capabilities\":{\"max_data_xfer_size\":4294967296}}",
        "{\"capabilities\":{\"max_msg_fds\":1,\"max_msg_fds\":2}}", "{\"capabilities\":{}} {}", "{\"capabilities\":{",
        "{\"capabilities\":{\"migration\":{\"x\":{\"y\":[1]}}}}", "{\"capabilities\":{\"twin_socket\":true}}",
        "{\"capabilities\":{\"pgsizes\":99999999999999999999999}}"
    })
    void shouldRefuseMalformedOrOutOfRangeCapabilitiesWithEinval(String json) {
        VfioUserProtocolException e = assertThrows(VfioUserProtocolException.class, () -> parse(json));
        assertEquals(Errno.EINVAL, e.errno(), e.getMessage());
    }

    @Test
    void shouldRefuseOversizeAndUnterminatedVersionData() {
        byte[] big = ("{\"capabilities\":{\"x\":\"" + "a".repeat(Capabilities.MAX_JSON_BYTES) + "\"}}\0").getBytes(StandardCharsets.UTF_8);
        var seg = java.lang.foreign.MemorySegment.ofArray(big);
        assertEquals(Errno.EINVAL, assertThrows(VfioUserProtocolException.class, () -> Capabilities.parse(seg, 0, big.length)).errno());
        byte[] unterminated = "{\"capabilities\":{}}".getBytes(StandardCharsets.UTF_8);
        var seg2 = java.lang.foreign.MemorySegment.ofArray(unterminated);
        assertThrows(VfioUserProtocolException.class, () -> Capabilities.parse(seg2, 0, unterminated.length));
        byte[] inner = "{\"capabilities\":{}}\0\0".getBytes(StandardCharsets.UTF_8);
        var seg3 = java.lang.foreign.MemorySegment.ofArray(inner);
        assertThrows(VfioUserProtocolException.class, () -> Capabilities.parse(seg3, 0, inner.length));
    }

    @Test
    void shouldAnswerOnlyWithKeysTheClientProposed() throws Exception {
        Capabilities server = Capabilities.builder().maxMsgFds(8).maxDataXferSize(1 << 20).maxDmaMaps(128).pgsizes(4096)
                .writeMultiple(true).migration(4096, 0).build();
        Capabilities libvfioUserClient = parse("{\"capabilities\":{\"max_msg_fds\":8}}");
        Capabilities reply = server.answerTo(libvfioUserClient);
        assertEquals(Capabilities.KEY_MAX_MSG_FDS | Capabilities.KEY_MAX_DATA_XFER_SIZE, reply.present());
        Capabilities qemu = parse("{\"capabilities\":{\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456},"
                + "\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,\"max_dma_maps\":65535,\"write_multiple\":true}}");
        Capabilities toQemu = server.answerTo(qemu);
        assertTrue(toQemu.writeMultiple());
        assertEquals(128, parse(new String(toQemu.toJson(), StandardCharsets.UTF_8)).maxDmaMaps());
        assertFalse(toQemu.has(Capabilities.KEY_TWIN_SOCKET));
    }

    @Test
    void shouldRoundTripThroughJson() throws Exception {
        Capabilities c = Capabilities.builder().maxMsgFds(3).maxDataXferSize(4096).maxDmaMaps(7).pgsizes(8192).writeMultiple(true)
                .twinSocket(true, 0).migration(4096, 1024).build();
        assertEquals(c, Capabilities.parse(c.toJson()));
    }
}
