package dev.outproc.migration.testing;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.stream.DeviceStateWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Generates the golden corpus deterministically (fixed nonce, handshake hash, MAC key and signing seed). Run
 * {@link #main} to rewrite {@code src/test/resources/golden/}; {@code GoldenCorpusTest} fails when a regenerated stream
 * differs from the committed bytes, so a format change can never go unnoticed.
 */
public final class GoldenCorpus {
    /** Nonce of every corpus stream. */
    public static final byte[] NONCE = fill(0x11);
    /** Handshake hash of every corpus stream. */
    public static final byte[] HANDSHAKE_HASH = fill(0x22);
    /** MAC key of the MAC'd corpus stream. */
    public static final byte[] MAC_KEY = fill(0x33);
    /** Seed of the key that signs the signed corpus stream. */
    public static final SigningKey SIGNER = SigningKey.fromSeed(fill(0x44));

    private GoldenCorpus() {}

    private static byte[] fill(int b) {
        byte[] x = new byte[32];
        Arrays.fill(x, (byte) b);
        return x;
    }

    /**
     * Agreement for a corpus stream.
     *
     * @param version format version
     * @param impl implementation id
     * @return builder with the fixed nonce and hash
     */
    public static HandshakeAgreement.Builder agreement(int version, String impl) {
        return HandshakeAgreement.builder(CounterState.MODEL, CounterState.FORMAT, version).nonce(NONCE)
                .handshakeHash(HANDSHAKE_HASH).implementationId(impl);
    }

    /** Writes a stream. */
    interface Saver {
        void save(DeviceStateWriter w) throws IOException;
    }

    private static byte[] write(HandshakeAgreement a, Saver s) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, a)) {
            s.save(w);
        }
        return out.toByteArray();
    }

    /** @return counter v1 writing format version 1 @throws IOException never */
    public static byte[] counterV1() throws IOException {
        return write(agreement(1, "outproc.dev/example/counter-v1").build(), w -> CounterV1.save(CounterState.sample(), w));
    }

    /** @return counter v2 writing format version 2 @throws IOException never */
    public static byte[] counterV2() throws IOException {
        return write(agreement(2, "outproc.dev/example/counter-v2").build(), w -> CounterV2.save(CounterState.sample(), w));
    }

    /** @return counter v2 downgraded to format version 1 @throws IOException never */
    public static byte[] counterV2Downgraded() throws IOException {
        return write(agreement(1, "outproc.dev/example/counter-v2").build(), w -> CounterV2.save(CounterState.sample(), w));
    }

    /** @return counter v2, format version 2, with MAC and signature @throws IOException never */
    public static byte[] counterV2MacSigned() throws IOException {
        return write(agreement(2, "outproc.dev/example/counter-v2").macKey(MAC_KEY).signWith(SIGNER).build(),
                w -> CounterV2.save(CounterState.sample(), w));
    }

    /** @return the worked example of the spec @throws IOException never */
    public static byte[] workedExample() throws IOException {
        HandshakeAgreement a = HandshakeAgreement.builder("example.org/dev", "example.org/dev/state", 1)
                .nonce(NONCE).handshakeHash(HANDSHAKE_HASH).build();
        return write(a, w -> {
            w.beginSection(1, 1, true).int32(1, 7).string(2, "hi");
            w.endSection();
            w.finish();
        });
    }

    /** @return every corpus file by name @throws IOException never */
    public static Map<String, byte[]> all() throws IOException {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("counter-v1.oms", counterV1());
        m.put("counter-v2.oms", counterV2());
        m.put("counter-v2-downgraded.oms", counterV2Downgraded());
        m.put("counter-v2-mac-signed.oms", counterV2MacSigned());
        m.put("worked-example.oms", workedExample());
        return m;
    }

    /**
     * Rewrites the corpus.
     *
     * @param args optional target directory (default {@code migration-format/src/test/resources/golden})
     * @throws IOException if writing fails
     */
    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : "migration-format/src/test/resources/golden");
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> e : all().entrySet()) {
            Files.write(dir.resolve(e.getKey()), e.getValue());
            System.out.println(e.getKey() + " " + e.getValue().length + " bytes");
        }
    }
}
