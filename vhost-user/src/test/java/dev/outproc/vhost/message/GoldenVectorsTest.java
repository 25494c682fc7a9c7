package dev.outproc.vhost.message;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Golden byte vectors for every message type: each file is decoded with the production decoders, every
 * field named in its comments must hold the commented value (and every non-zero field must be
 * commented), the message passes the syntax checks, and encoding the commented values with the
 * production encoders gives back the file's bytes exactly.
 */
class GoldenVectorsTest {
    @BeforeAll
    static void littleEndianHost() {
        assumeTrue(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN, "golden vectors are written in little-endian order");
    }

    static List<String> files() {
        return GoldenVector.index();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("files")
    void shouldDecodeEveryCommentedFieldAndReencodeByteExactly(String file) throws Exception {
        GoldenVector v = GoldenVector.load(file);
        MemorySegment message = Arena.ofAuto().allocate(v.bytes().length);
        MemorySegment.copy(MemorySegment.ofArray(v.bytes()), 0, message, 0, v.bytes().length);

        VhostUserRequest request = MessageValidator.check(v.stream(), message, v.fds(), MessageValidator.DEFAULT_MAX_PAYLOAD_BYTES);
        assertEquals(v.request(), request, file);

        VhostUserHeader.Decoder header = new VhostUserHeader.Decoder().wrap(message, 0);
        assertEquals(v.fields().get("header.request"), header.request(), file);
        assertEquals(v.fields().get("header.flags"), header.flags(), file);
        assertEquals(v.fields().get("header.size"), header.size(), file);
        assertEquals(v.bytes().length - VhostUserHeader.ENCODED_LENGTH, header.size(), file + ": size vs bytes");

        PayloadType type = PayloadFields.typeOf(request, v.stream().replies(), header.size());
        Map<String, Object> decoded = PayloadFields.decode(type, message, VhostUserHeader.ENCODED_LENGTH, header.size());
        for (Map.Entry<String, Object> e : v.fields().entrySet()) {
            if (e.getKey().startsWith("header.")) {
                continue;
            }
            assertTrue(decoded.containsKey(e.getKey()), file + ": decoder has no field " + e.getKey());
            assertFieldEquals(file, e.getKey(), e.getValue(), decoded.get(e.getKey()));
        }
        for (Map.Entry<String, Object> e : decoded.entrySet()) {
            boolean zero = e.getValue() instanceof Long l ? l == 0 : ((byte[]) e.getValue()).length == 0;
            assertTrue(zero || v.fields().containsKey(e.getKey()), file + ": non-zero field not in the vector: " + e.getKey());
        }

        MemorySegment encoded = Arena.ofAuto().allocate(v.bytes().length);
        int size = PayloadFields.encode(type, v.fields(), encoded, VhostUserHeader.ENCODED_LENGTH);
        new VhostUserHeader.Encoder().wrap(encoded, 0).request(request.code())
                .flags((Long) v.fields().get("header.flags")).size(size);
        assertEquals(header.size(), size, file + ": encoded payload size");
        assertArrayEquals(v.bytes(), encoded.toArray(ValueLayout.JAVA_BYTE),
                () -> file + ": re-encoded bytes differ\nexpected " + HexFormat.of().formatHex(v.bytes())
                        + "\nactual   " + HexFormat.of().formatHex(encoded.toArray(ValueLayout.JAVA_BYTE)));
    }

    private static void assertFieldEquals(String file, String name, Object expected, Object actual) {
        if (expected instanceof byte[] e) {
            assertArrayEquals(e, (byte[]) actual, file + ": field " + name);
        } else {
            assertEquals(expected, actual, () -> file + ": field " + name + " expected 0x" + Long.toHexString((Long) expected)
                    + " actual 0x" + Long.toHexString((Long) actual));
        }
    }

    @Test
    void shouldHaveAVectorForEveryRequestAndEveryExplicitReply() {
        Set<String> requests = new HashSet<>();
        Set<String> replies = new HashSet<>();
        for (String file : files()) {
            GoldenVector v = GoldenVector.load(file);
            (v.stream().replies() ? replies : requests).add(v.request().specName());
        }
        for (FrontendRequest r : FrontendRequest.values()) {
            assertTrue(requests.contains(r.specName()), "no golden request vector for " + r);
            if (r.alwaysReplies()) {
                assertTrue(replies.contains(r.specName()), "no golden reply vector for " + r);
            }
        }
        for (BackendRequest r : BackendRequest.values()) {
            assertTrue(requests.contains(r.specName()), "no golden request vector for " + r);
            if (r.alwaysReplies()) {
                assertTrue(replies.contains(r.specName()), "no golden reply vector for " + r);
            }
        }
    }
}
