package dev.outproc.migration.vectors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.HandshakeCodec;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.model.DeviceModel;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.stream.DeviceStateWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bouncycastle.crypto.agreement.X25519Agreement;
import org.bouncycastle.crypto.params.X25519PrivateKeyParameters;

/**
 * Generates the published test vectors ({@code migration-format/docs/vectors/}) deterministically from fixed inputs:
 * model digests with their canonical forms, a registry entry signature, the handshake messages (offer, accept,
 * refuse, begin, result), the handshake hash, X25519 and HKDF outputs, and a stream with MAC and signature together
 * with its header digest, section digests, transcript chain, MAC and signature inputs. Run {@link #main} to rewrite
 * them; {@code TestVectorsTest} fails when a regenerated file differs from the committed one and recomputes every
 * construction with the JDK's own cryptography.
 */
public final class TestVectors {
    /** Fixed inputs. */
    static final byte[] SOURCE_NONCE = fill(0x01);
    static final byte[] SOURCE_X25519 = fill(0x02);
    static final byte[] DESTINATION_X25519 = fill(0x03);
    static final byte[] DESTINATION_NONCE = fill(0x04);
    static final byte[] SIGNING_SEED = fill(0x05);
    static final byte[] REGISTRY_SIGNING_SEED = fill(0x06);

    private TestVectors() {}

    private static byte[] fill(int b) {
        byte[] x = new byte[32];
        Arrays.fill(x, (byte) b);
        return x;
    }

    /** A SecureRandom that hands out queued values: the sessions draw nonces and X25519 keys from it in a fixed order. */
    static final class FixedRandom extends SecureRandom {
        private static final long serialVersionUID = 1L;
        private final transient Deque<byte[]> values = new ArrayDeque<>();

        FixedRandom(byte[]... values) {
            for (byte[] v : values) {
                this.values.add(v);
            }
        }

        @Override
        public void nextBytes(byte[] bytes) {
            byte[] v = values.poll();
            if (v == null || v.length != bytes.length) {
                throw new IllegalStateException("unexpected draw of " + bytes.length + " random bytes");
            }
            System.arraycopy(v, 0, bytes, 0, v.length);
        }
    }

    static DeviceDescriptor descriptor(String name) throws IOException {
        try (InputStream in = TestVectors.class.getResourceAsStream("/descriptors/" + name)) {
            return DeviceDescriptor.parse(in.readAllBytes());
        }
    }

    /** A model whose strings exercise every escaping rule of the canonical form. */
    static DeviceModel escapingModel() throws IOException {
        String json = """
                {"registryFormat": 1, "models": [{"id": "example.org/escape", "revision": 3,
                 "description": "quote \\" backslash \\\\ slash / tab \\t newline \\n cr \\r bs \\b ff \\f unit \\u001f del \\u007f nbsp \\u00a0 e \\u00e9 euro \\u20ac ls \\u2028 emoji \\ud83d\\ude00 end",
                 "parameters": [{"name": "big", "type": "uint64", "default": "0xffffffffffffffff"},
                                {"name": "neg", "type": "int64", "default": -9007199254740993},
                                {"name": "label", "type": "string", "default": "\\u00e9\\ud834\\udd1e"}],
                 "formatClasses": [{"id": "example.org/escape/state", "versions": [{"version": 1, "sections": [
                   {"id": 4294967295, "name": "all", "version": 65535, "mustUnderstand": true, "fields": [
                     {"tag": 1, "name": "s8", "type": "int8", "signed": true, "default": -128},
                     {"tag": 2, "name": "blob", "type": "bytes", "default": "00ff"},
                     {"tag": 3, "name": "list", "type": "array", "element": "int32", "default": []},
                     {"tag": 65535, "name": "sub", "type": "record", "fields": [{"tag": 1, "name": "on", "type": "bool", "default": false}]}]}]}]}]}]}
                """;
        return Registry.parse(json.getBytes(StandardCharsets.UTF_8)).model("example.org/escape").orElseThrow();
    }

    static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }

    static byte[] sha256(byte[]... parts) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            for (byte[] p : parts) {
                d.update(p);
            }
            return d.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@return every vector file by name} @throws IOException never */
    public static Map<String, byte[]> all() throws IOException {
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put("model-digests.json", modelDigests());
        Handshake h = handshake();
        files.put("handshake.json", h.json);
        files.put("stream.json", stream(h));
        return files;
    }

    private interface Body {
        void write(JsonGenerator g) throws IOException;
    }

    private static byte[] json(Body body) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = new JsonFactory().createGenerator(out)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            body.write(g);
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.write('\n');
        return out.toByteArray();
    }

    private static byte[] modelDigests() throws IOException {
        Registry builtin = Registry.builtin();
        SigningKey registryKey = SigningKey.fromSeed(REGISTRY_SIGNING_SEED);
        DeviceModel escape = escapingModel();
        byte[] registrySignature = Registry.of(java.util.List.of(escape)).sign(escape.id(), "example.org", registryKey)
                .signatures().getFirst().signature();
        return json(g -> {
            g.writeStringField("construction", "registry-format.md section 4: canonical form (RFC 8785 over the normalized tree) and SHA-256");
            g.writeArrayFieldStart("models");
            for (DeviceModel m : builtin.models()) {
                writeModel(g, m, "src/main/resources/dev/outproc/migration/registry");
            }
            writeModel(g, escape, "the registry text in escapingRegistry below");
            g.writeEndArray();
            g.writeStringField("escapingRegistry", new String(Registry.of(java.util.List.of(escape)).toJson(), StandardCharsets.UTF_8));
            g.writeObjectFieldStart("registrySignature");
            g.writeStringField("model", escape.id());
            g.writeStringField("seed", hex(REGISTRY_SIGNING_SEED));
            g.writeStringField("publicKey", hex(registryKey.verifyingKey().encoded()));
            g.writeStringField("message", hex(concat("outproc-registry-entry-v1\n".getBytes(StandardCharsets.US_ASCII), Registry.canonicalBytes(escape))));
            g.writeStringField("signature", hex(registrySignature));
            g.writeEndObject();
        });
    }

    private static void writeModel(JsonGenerator g, DeviceModel m, String source) throws IOException {
        g.writeStartObject();
        g.writeStringField("id", m.id());
        g.writeStringField("source", source);
        g.writeStringField("canonical", new String(Registry.canonicalBytes(m), StandardCharsets.UTF_8));
        g.writeStringField("canonicalHex", hex(Registry.canonicalBytes(m)));
        g.writeStringField("sha256", hex(Registry.modelDigest(m)));
        g.writeEndObject();
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    /** The handshake vectors and the agreement the stream vector is written under. */
    record Handshake(byte[] json, HandshakeAgreement sourceAgreement) {}

    private static Handshake handshake() throws IOException {
        Registry reg = Registry.builtin();
        DeviceDescriptor src = descriptor("counter-source-v2.json");
        DeviceDescriptor dst = descriptor("counter-dest-v1.json");
        SigningKey signer = SigningKey.fromSeed(SIGNING_SEED);
        MigrationSession.Source source = MigrationSession.source(src, reg, true, new FixedRandom(SOURCE_NONCE, SOURCE_X25519)).signWith(signer);
        byte[] offer = source.offer();
        MigrationSession.Answer answer = MigrationSession.destination(dst, new CompatibilityChecker(reg), true,
                new FixedRandom(DESTINATION_X25519, DESTINATION_NONCE)).requireSignatureBy(java.util.Set.of(signer.verifyingKey())).answer(offer);
        HandshakeAgreement agreement = source.complete(answer.bytes());
        byte[] shared = new byte[32];
        X25519Agreement x = new X25519Agreement();
        x.init(new X25519PrivateKeyParameters(SOURCE_X25519, 0));
        x.calculateAgreement(new X25519PrivateKeyParameters(DESTINATION_X25519, 0).generatePublicKey(), shared, 0);
        MigrationSession.Answer refusal = MigrationSession.destination(descriptor("blk-dest-incompatible.json"), new CompatibilityChecker(reg),
                false, new FixedRandom()).answer(MigrationSession.source(descriptor("blk-source.json"), reg, false, new FixedRandom(SOURCE_NONCE)).offer());
        byte[] json = json(g -> {
            g.writeStringField("construction", "stream-format.md section 9 (messages, handshake hash, MAC key) and integration.md section 7 (begin, result)");
            g.writeStringField("sourceDescriptor", "src/test/resources/descriptors/counter-source-v2.json");
            g.writeStringField("destinationDescriptor", "src/test/resources/descriptors/counter-dest-v1.json");
            g.writeStringField("sourceNonce", hex(SOURCE_NONCE));
            g.writeStringField("sourceX25519Private", hex(SOURCE_X25519));
            g.writeStringField("sourceX25519Public", hex(new X25519PrivateKeyParameters(SOURCE_X25519, 0).generatePublicKey().getEncoded()));
            g.writeStringField("destinationX25519Private", hex(DESTINATION_X25519));
            g.writeStringField("destinationX25519Public", hex(new X25519PrivateKeyParameters(DESTINATION_X25519, 0).generatePublicKey().getEncoded()));
            g.writeStringField("destinationNonce", hex(DESTINATION_NONCE));
            g.writeStringField("streamSignerSeed", hex(SIGNING_SEED));
            g.writeStringField("streamSignerPublic", hex(signer.verifyingKey().encoded()));
            g.writeStringField("offer", hex(offer));
            g.writeStringField("accept", hex(answer.bytes()));
            g.writeStringField("handshakeHashInput", hex(concat("outproc-migration-handshake-v1".getBytes(StandardCharsets.US_ASCII),
                    le32(offer.length), offer, le32(answer.bytes().length), answer.bytes())));
            g.writeStringField("handshakeHash", hex(agreement.handshakeHash()));
            g.writeStringField("x25519Shared", hex(shared));
            g.writeStringField("hkdfInfo", hex("outproc-migration-mac-key-v1".getBytes(StandardCharsets.US_ASCII)));
            g.writeStringField("macKey", hex(agreement.macKey()));
            g.writeStringField("refuseOffer", hex(MigrationSession.source(descriptor("blk-source.json"), reg, false, new FixedRandom(SOURCE_NONCE)).offer()));
            g.writeStringField("refuseOfferSourceDescriptor", "src/test/resources/descriptors/blk-source.json");
            g.writeStringField("refuseDestinationDescriptor", "src/test/resources/descriptors/blk-dest-incompatible.json");
            g.writeStringField("refuse", hex(refusal.bytes()));
            g.writeStringField("beginSource", hex(HandshakeCodec.encodeBegin(HandshakeCodec.ROLE_SOURCE)));
            g.writeStringField("beginDestination", hex(HandshakeCodec.encodeBegin(HandshakeCodec.ROLE_DESTINATION)));
            g.writeStringField("resultAgreed", hex(HandshakeCodec.encodeResult(new HandshakeCodec.Result(true, "", agreement.formatVersion(), agreement.handshakeHash()))));
            g.writeStringField("resultRefused", hex(HandshakeCodec.encodeResult(new HandshakeCodec.Result(false, "refused", 0, new byte[0]))));
        });
        return new Handshake(json, agreement);
    }

    static byte[] le32(int v) {
        return new byte[] {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16), (byte) (v >>> 24)};
    }

    /** A stream of format version 1 under the handshake's agreement: MAC and signature, two sections. */
    static byte[] streamBytes(HandshakeAgreement a) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, a)) {
            w.beginSection(1, 1, true).int16(1, 256).int64(2, 0x0102030405060708L).string(3, "vector");
            w.endSection();
            w.beginSection(2, 1, true).bytes(1, new byte[] {(byte) 0xde, (byte) 0xad, (byte) 0xbe, (byte) 0xef});
            w.endSection();
            w.finish();
        }
        return out.toByteArray();
    }

    private static byte[] stream(Handshake h) throws IOException {
        byte[] s = streamBytes(h.sourceAgreement());
        int headerLength = (s[12] & 0xff) | (s[13] & 0xff) << 8;
        byte[] t0 = sha256(Arrays.copyOfRange(s, 0, headerLength));
        // Two sections of one chunk each: frame header 12, chunk length 4, payload, terminator 4, digest 32.
        int p = headerLength;
        byte[][] digests = new byte[2][];
        byte[][] sections = new byte[2][];
        for (int i = 0; i < 2; i++) {
            int chunk = (s[p + 12] & 0xff) | (s[p + 13] & 0xff) << 8 | (s[p + 14] & 0xff) << 16;
            int end = p + 12 + 4 + chunk + 4;
            sections[i] = Arrays.copyOfRange(s, p, end);
            digests[i] = Arrays.copyOfRange(s, end, end + 32);
            p = end + 32;
        }
        byte[] t1 = sha256(t0, digests[0]);
        byte[] t2 = sha256(t1, digests[1]);
        byte[] trailerFixed = Arrays.copyOfRange(s, p, p + 8);
        byte[] mac = Arrays.copyOfRange(s, p + 8 + 32, p + 8 + 64);
        byte[] signature = Arrays.copyOfRange(s, s.length - 64, s.length);
        int endOfHeader = headerLength;
        return json(g -> {
            g.writeStringField("construction", "stream-format.md sections 3-7: header, section digests, transcript, MAC, signature");
            g.writeStringField("agreement", "the handshake of handshake.json (its handshake hash, MAC key and stream signer)");
            g.writeStringField("stream", hex(s));
            g.writeStringField("header", hex(Arrays.copyOfRange(s, 0, endOfHeader)));
            g.writeStringField("t0", hex(t0));
            g.writeStringField("section0", hex(sections[0]));
            g.writeStringField("section0Digest", hex(digests[0]));
            g.writeStringField("t1", hex(t1));
            g.writeStringField("section1", hex(sections[1]));
            g.writeStringField("section1Digest", hex(digests[1]));
            g.writeStringField("t2", hex(t2));
            g.writeStringField("trailerFixed", hex(trailerFixed));
            g.writeStringField("macInput", hex(concat("outproc-migration-mac-v1".getBytes(StandardCharsets.US_ASCII), t2, trailerFixed)));
            g.writeStringField("mac", hex(mac));
            g.writeStringField("signatureInput", hex(concat("outproc-migration-sig-v1".getBytes(StandardCharsets.US_ASCII), t2, trailerFixed, mac)));
            g.writeStringField("signature", hex(signature));
            g.writeStringField("section0Fields", "1 INT16 256, 2 INT64 0x0102030405060708, 3 STRING \"vector\"");
            g.writeStringField("section1Fields", "1 BYTES deadbeef");
        });
    }

    /**
     * Rewrites the vectors.
     *
     * @param args optional target directory (default {@code migration-format/docs/vectors})
     * @throws IOException if writing fails
     */
    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : "migration-format/docs/vectors");
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> e : all().entrySet()) {
            Files.write(dir.resolve(e.getKey()), e.getValue());
            System.out.println(e.getKey() + " " + e.getValue().length + " bytes");
        }
    }
}
