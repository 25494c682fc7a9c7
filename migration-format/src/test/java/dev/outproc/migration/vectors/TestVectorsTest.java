package dev.outproc.migration.vectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.HandshakeCodec;
import dev.outproc.migration.handshake.MigrationAccept;
import dev.outproc.migration.internal.JsonTree;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.StateSchemaReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.StreamTrailer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.EdECPoint;
import java.security.spec.EdECPublicKeySpec;
import java.security.spec.NamedParameterSpec;
import java.security.spec.XECPrivateKeySpec;
import java.security.spec.XECPublicKeySpec;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import javax.crypto.KeyAgreement;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/**
 * The published test vectors ({@code docs/vectors/}): the committed files equal what the library produces today, and
 * every construction in them is recomputed here with the JDK's own SHA-256, HMAC, X25519 and Ed25519 (not
 * BouncyCastle, which the library uses), from the formulas of the spec.
 */
class TestVectorsTest {
    private static final Path DIR = Path.of("docs/vectors");

    private static Map<String, Object> load(String name) throws IOException {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) JsonTree.parse(Files.readAllBytes(DIR.resolve(name)));
        return m;
    }

    private static byte[] h(Map<String, Object> m, String key) {
        return HexFormat.of().parseHex((String) m.get(key));
    }

    private static byte[] hmac(byte[] key, byte[]... parts) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        for (byte[] p : parts) {
            mac.update(p);
        }
        return mac.doFinal();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /** JDK Ed25519 public key from its 32-byte RFC 8032 encoding. */
    private static PublicKey ed25519(byte[] encoded) throws Exception {
        byte[] y = encoded.clone();
        boolean xOdd = (y[31] & 0x80) != 0;
        y[31] &= 0x7f;
        byte[] be = new byte[32];
        for (int i = 0; i < 32; i++) {
            be[i] = y[31 - i];
        }
        return KeyFactory.getInstance("Ed25519").generatePublic(new EdECPublicKeySpec(NamedParameterSpec.ED25519, new EdECPoint(xOdd, new BigInteger(1, be))));
    }

    private static boolean verifyEd25519(byte[] key, byte[] message, byte[] signature) throws Exception {
        Signature v = Signature.getInstance("Ed25519");
        v.initVerify(ed25519(key));
        v.update(message);
        try {
            return v.verify(signature);
        } catch (java.security.SignatureException e) {
            return false;
        }
    }

    private static byte[] x25519(byte[] privateKey, byte[] publicKey) throws Exception {
        KeyFactory kf = KeyFactory.getInstance("X25519");
        byte[] le = publicKey.clone();
        le[31] &= 0x7f;
        byte[] be = new byte[32];
        for (int i = 0; i < 32; i++) {
            be[i] = le[31 - i];
        }
        KeyAgreement ka = KeyAgreement.getInstance("X25519");
        ka.init(kf.generatePrivate(new XECPrivateKeySpec(NamedParameterSpec.X25519, privateKey)));
        ka.doPhase(kf.generatePublic(new XECPublicKeySpec(NamedParameterSpec.X25519, new BigInteger(1, be))), true);
        return ka.generateSecret();
    }

    @Test
    void committedVectorsShouldEqualWhatTheLibraryProduces() throws IOException {
        for (Map.Entry<String, byte[]> e : TestVectors.all().entrySet()) {
            assertEquals(new String(e.getValue(), StandardCharsets.UTF_8), Files.readString(DIR.resolve(e.getKey())),
                    e.getKey() + " is stale: rerun TestVectors.main after an intended change");
        }
    }

    @Test
    void modelDigestsShouldBeSha256OfTheCanonicalForm() throws Exception {
        Map<String, Object> v = load("model-digests.json");
        for (Object o : (Iterable<?>) v.get("models")) {
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) o;
            byte[] canonical = ((String) m.get("canonical")).getBytes(StandardCharsets.UTF_8);
            assertArrayEquals(h(m, "canonicalHex"), canonical);
            assertArrayEquals(h(m, "sha256"), TestVectors.sha256(canonical), (String) m.get("id"));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> s = (Map<String, Object>) v.get("registrySignature");
        assertTrue(verifyEd25519(h(s, "publicKey"), h(s, "message"), h(s, "signature")));
    }

    @Test
    void canonicalFormShouldFollowRfc8785Escaping() throws IOException {
        String escape = (String) ((Map<?, ?>) ((java.util.List<?>) load("model-digests.json").get("models")).getLast()).get("canonical");
        assertTrue(escape.contains("\"description\":\"quote \\\" backslash \\\\ slash / tab \\t newline \\n cr \\r bs \\b ff \\f unit \\u001f del \u007f nbsp \u00a0 e \u00e9 euro \u20ac ls \u2028 emoji \uD83D\uDE00 end\""), escape);
        assertTrue(escape.contains("\"default\":\"18446744073709551615\"") && escape.contains("\"default\":\"-9007199254740993\""), escape);
        assertTrue(escape.contains("{\"default\":\"-128\",\"name\":\"s8\",\"signed\":true,\"tag\":1,\"type\":\"int8\"}"), escape);
    }

    @Test
    void handshakeVectorsShouldRecomputeWithTheJdk() throws Exception {
        Map<String, Object> v = load("handshake.json");
        byte[] offer = h(v, "offer");
        byte[] accept = h(v, "accept");
        byte[] input = TestVectors.concat(ascii("outproc-migration-handshake-v1"), TestVectors.le32(offer.length), offer,
                TestVectors.le32(accept.length), accept);
        assertArrayEquals(h(v, "handshakeHashInput"), input);
        byte[] hash = TestVectors.sha256(input);
        assertArrayEquals(h(v, "handshakeHash"), hash);
        byte[] shared = x25519(h(v, "sourceX25519Private"), h(v, "destinationX25519Public"));
        assertArrayEquals(h(v, "x25519Shared"), shared);
        assertArrayEquals(shared, x25519(h(v, "destinationX25519Private"), h(v, "sourceX25519Public")));
        // HKDF-SHA256 (RFC 5869) with L = 32: one block.
        byte[] prk = hmac(hash, shared);
        byte[] okm = hmac(prk, ascii("outproc-migration-mac-key-v1"), new byte[] {1});
        assertArrayEquals(h(v, "macKey"), okm);
        MigrationAccept a = (MigrationAccept) HandshakeCodec.decodeAnswer(accept);
        assertArrayEquals(h(v, "destinationNonce"), a.destinationNonce());
        assertArrayEquals(h(v, "streamSignerPublic"), a.signers().getFirst());
        assertEquals(MigrationAccept.REQUIRE_MAC | MigrationAccept.REQUIRE_SIGNATURE, a.requirements());
        assertArrayEquals(h(v, "sourceNonce"), HandshakeCodec.decodeOffer(offer).nonce());
        assertEquals(HandshakeCodec.ROLE_SOURCE, HandshakeCodec.decodeBegin(h(v, "beginSource")));
        assertArrayEquals(hash, HandshakeCodec.decodeResult(h(v, "resultAgreed")).handshakeHash());
    }

    @Test
    void streamVectorsShouldRecomputeWithTheJdkAndVerify() throws Exception {
        Map<String, Object> hs = load("handshake.json");
        Map<String, Object> v = load("stream.json");
        byte[] stream = h(v, "stream");
        assertArrayEquals(h(v, "t0"), TestVectors.sha256(h(v, "header")));
        assertArrayEquals(h(v, "section0Digest"), TestVectors.sha256(h(v, "section0")));
        assertArrayEquals(h(v, "section1Digest"), TestVectors.sha256(h(v, "section1")));
        assertArrayEquals(h(v, "t1"), TestVectors.sha256(h(v, "t0"), h(v, "section0Digest")));
        assertArrayEquals(h(v, "t2"), TestVectors.sha256(h(v, "t1"), h(v, "section1Digest")));
        assertArrayEquals(h(v, "mac"), hmac(h(hs, "macKey"), ascii("outproc-migration-mac-v1"), h(v, "t2"), h(v, "trailerFixed")));
        assertTrue(verifyEd25519(h(hs, "streamSignerPublic"), h(v, "signatureInput"), h(v, "signature")));
        byte[] tampered = h(v, "signature");
        tampered[32] ^= 0x01;
        assertFalse(verifyEd25519(h(hs, "streamSignerPublic"), h(v, "signatureInput"), tampered));

        HandshakeAgreement reader = HandshakeAgreement.builder("outproc.dev/example/counter", "outproc.dev/example/counter/state", 1)
                .nonce(h(hs, "sourceNonce")).handshakeHash(h(hs, "handshakeHash")).macKey(h(hs, "macKey")).build();
        try (DeviceStateReader r = DeviceStateReader.open(new ByteArrayInputStream(stream), reader)) {
            Map<String, Map<String, Object>> state = StateSchemaReader.read(r, Registry.builtin().model("outproc.dev/example/counter")
                    .orElseThrow().formatClasses().getFirst().version(1).orElseThrow());
            assertEquals("vector", state.get("config").get("label"));
            assertEquals(256L, state.get("config").get("queue_size"));
            StreamTrailer t = r.finish();
            assertTrue(t.macVerified());
            assertArrayEquals(h(v, "t2"), t.transcript());
            assertArrayEquals(Arrays.copyOfRange(stream, stream.length - 96, stream.length - 64), t.signer().encoded());
        }
    }
}
