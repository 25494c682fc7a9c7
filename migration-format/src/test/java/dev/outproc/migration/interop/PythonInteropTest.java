package dev.outproc.migration.interop;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.MigrationRefusedException;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.model.DeviceModel;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.MigrationStreamException;
import dev.outproc.migration.stream.StreamHeader;
import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.testing.CounterV1;
import dev.outproc.migration.testing.CounterV2;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The second implementation ({@code interop/python/}, written from {@code docs/} alone: Python standard library and
 * Debian's python3-cryptography) against this one: it checks every published test vector, decodes and verifies the
 * golden corpus, computes the same model digests, writes streams this reader accepts (and malformed ones it refuses),
 * verifies streams this writer produces, and runs each side of a handshake against the other side in Java.
 * Skipped when {@code /usr/bin/python3} with the cryptography package is absent, unless {@code -Dinterop.required=true}.
 */
class PythonInteropTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");
    private static final Path SCRIPT = Path.of("interop/python/run_interop.py");
    private static final List<String> REGISTRIES = List.of("src/main/resources/dev/outproc/migration/registry/virtio-blk.json",
            "src/main/resources/dev/outproc/migration/registry/example-counter.json");
    private static final SecureRandom RANDOM = new SecureRandom();

    private record Run(int status, String out) {}

    @BeforeAll
    static void pythonPresent() throws Exception {
        boolean present = Files.isExecutable(PYTHON) && run0(List.of(PYTHON.toString(), "-c", "import cryptography")).status() == 0;
        if (!present && Boolean.getBoolean("interop.required")) {
            throw new AssertionError(PYTHON + " with python3-cryptography is required (-Dinterop.required=true); install python3-cryptography");
        }
        Assumptions.assumeTrue(present, PYTHON + " with python3-cryptography not found");
    }

    private static Run run0(List<String> command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "python did not finish: " + command);
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    private static Run python(String... args) throws Exception {
        List<String> c = new ArrayList<>(List.of(PYTHON.toString(), SCRIPT.toString()));
        c.addAll(List.of(args));
        return run0(c);
    }

    private static String[] withRegistries(String... args) {
        List<String> l = new ArrayList<>(List.of(args));
        l.addAll(REGISTRIES);
        return l.toArray(String[]::new);
    }

    @Test
    void pythonImplementationsOwnUnitTestsShouldPass() throws Exception {
        Run r = run0(List.of(PYTHON.toString(), "-m", "unittest", "discover", "-s", "interop/python", "-p", "test_*.py"));
        assertEquals(0, r.status(), r.out());
        assertTrue(r.out().contains("\nOK"), r.out());
    }

    @Test
    void pythonShouldCheckEveryPublishedTestVector() throws Exception {
        Run r = python(withRegistries("vectors", "docs/vectors"));
        assertEquals(0, r.status(), r.out());
        assertTrue(r.out().contains("OK"), r.out());
    }

    @Test
    void pythonShouldDecodeAndVerifyTheWholeGoldenCorpus() throws Exception {
        Run r = python(withRegistries("golden", "src/test/resources/golden"));
        assertEquals(0, r.status(), r.out());
        assertTrue(r.out().contains("counter-v2-mac-signed.oms: outproc.dev/example/counter/state version 2, 5 sections")
                && r.out().contains("MAC verified, signed by the pinned key") && r.out().contains("worked-example.oms"), r.out());
    }

    @Test
    void modelDigestsShouldAgree() throws Exception {
        Run r = python(withRegistries("digests"));
        assertEquals(0, r.status(), r.out());
        for (DeviceModel m : Registry.builtin().models()) {
            assertTrue(r.out().contains(m.id() + " " + HexFormat.of().formatHex(Registry.modelDigest(m))), m.id() + "\n" + r.out());
        }
    }

    @Test
    void streamsWrittenByPythonShouldBeAcceptedOrRefusedByTheJavaReader(@TempDir Path dir) throws Exception {
        Run w = python("write", dir.toString());
        assertEquals(0, w.status(), w.out());
        try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(Files.newInputStream(dir.resolve("py-counter-v1.oms"))),
                CounterState.MODEL, CounterState.FORMAT, 1, 1)) {
            CounterState s = CounterV1.load(r);
            assertEquals("from-python", s.label());
            assertEquals(Long.MIN_VALUE + 5, s.counter(), "2^63 + 5 as the unsigned bits of an INT64");
        }
        SigningKey pythonKey = SigningKey.fromSeed(filled(0x71));
        try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(Files.newInputStream(dir.resolve("py-counter-v2-mac-signed.oms"))),
                CounterState.MODEL, CounterState.FORMAT, 1, 2, filled(0x33), Set.of(pythonKey.verifyingKey()))) {
            CounterState s = CounterV2.load(r);
            assertEquals("signed-python", s.label());
            assertEquals(3, s.rings().size());
            assertEquals(pythonKey.verifyingKey(), r.finish().signer());
        }
        try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(Files.newInputStream(dir.resolve("py-extension.oms"))),
                CounterState.MODEL, CounterState.FORMAT, 1, 1)) {
            StreamHeader h = r.header();
            assertEquals(1, h.extensions().size());
            assertEquals(0x8001, h.extensions().getFirst().kind());
            assertEquals("extension", CounterV1.load(r).label());
        }
        for (String refused : List.of("py-critical-extension.oms", "py-repeated-tag.oms", "py-unknown-subsection.oms")) {
            MigrationStreamException e = assertThrows(MigrationStreamException.class, () -> {
                try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(Files.newInputStream(dir.resolve(refused))),
                        CounterState.MODEL, CounterState.FORMAT, 1, 1)) {
                    CounterV1.load(r);
                }
            }, refused);
            assertTrue(e.getMessage().contains("critical") || e.getMessage().contains("twice") || e.getMessage().contains("must-understand"),
                    refused + ": " + e.getMessage());
        }
    }

    private static byte[] filled(int b) {
        byte[] x = new byte[32];
        Arrays.fill(x, (byte) b);
        return x;
    }

    @Test
    void streamsWrittenByJavaShouldVerifyInPython(@TempDir Path dir) throws Exception {
        byte[] macKey = new byte[32];
        RANDOM.nextBytes(macKey);
        SigningKey signer = SigningKey.generate(RANDOM);
        CounterState state = CounterState.sample();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, HandshakeAgreement.builder(CounterState.MODEL, CounterState.FORMAT, 2)
                .macKey(macKey).signWith(signer).implementationId("outproc.dev/example/counter-v2").build())) {
            CounterV2.save(state, w);
        }
        Path file = dir.resolve("java.oms");
        Files.write(file, out.toByteArray());
        Run r = python(withRegistries("verify", file.toString(), "--mac-key", HexFormat.of().formatHex(macKey),
                "--pin", HexFormat.of().formatHex(signer.verifyingKey().encoded())));
        assertEquals(0, r.status(), r.out());
        assertTrue(r.out().contains("\"macVerified\": true") && r.out().contains("\"label\": \"" + state.label() + "\"")
                && r.out().contains("\"counter\": " + state.counter()) && r.out().contains("\"ram\": \"" + HexFormat.of().formatHex(state.ram()) + "\""), r.out());

        byte[] flipped = out.toByteArray();
        flipped[flipped.length / 2] ^= 1;
        Files.write(file, flipped);
        Run bad = python(withRegistries("verify", file.toString(), "--mac-key", HexFormat.of().formatHex(macKey)));
        assertEquals(1, bad.status(), bad.out());
        assertTrue(bad.out().startsWith("FAIL"), bad.out());
    }

    @Test
    void aPythonSourceShouldMigrateToAJavaDestinationThroughTheHandshake(@TempDir Path dir) throws Exception {
        byte[] nonce = new byte[32];
        byte[] x25519 = new byte[32];
        RANDOM.nextBytes(nonce);
        RANDOM.nextBytes(x25519);
        byte[] seed = new byte[32];
        RANDOM.nextBytes(seed);
        SigningKey pythonKey = SigningKey.fromSeed(seed);
        Path offer = dir.resolve("offer.bin");
        Run o = python(withRegistries("offer", "src/test/resources/descriptors/counter-source-v2.json", "--nonce", HexFormat.of().formatHex(nonce),
                "--x25519", HexFormat.of().formatHex(x25519), "--out", offer.toString()));
        assertEquals(0, o.status(), o.out());
        DeviceDescriptor destination = DeviceDescriptor.load(Path.of("src/test/resources/descriptors/counter-dest-v1.json"));
        MigrationSession.Answer answer = MigrationSession.destination(destination, new CompatibilityChecker(Registry.builtin()), true, RANDOM)
                .requireSignatureBy(Set.of(pythonKey.verifyingKey())).answer(Files.readAllBytes(offer));
        assertTrue(answer.accepted(), "the Python offer (with its own model digest) is accepted: " + answer.reasons());
        Path accept = dir.resolve("accept.bin");
        Files.write(accept, answer.bytes());
        Path stream = dir.resolve("stream.oms");
        Run c = python("complete", offer.toString(), accept.toString(), "--x25519", HexFormat.of().formatHex(x25519),
                "--seed", HexFormat.of().formatHex(seed), "--out", stream.toString());
        assertEquals(0, c.status(), c.out());
        assertTrue(c.out().contains(HexFormat.of().formatHex(answer.agreement().handshakeHash())), "both sides computed one handshake hash: " + c.out());
        try (DeviceStateReader r = DeviceStateReader.open(new ByteArrayInputStream(Files.readAllBytes(stream)), answer.agreement())) {
            assertEquals("handshake-python", CounterV1.load(r).label());
            assertEquals(pythonKey.verifyingKey(), r.finish().signer());
        }
        // The same stream is refused by the next migration between the same two devices.
        MigrationSession.Answer next = MigrationSession.destination(destination, new CompatibilityChecker(Registry.builtin()), true, RANDOM)
                .requireSignatureBy(Set.of(pythonKey.verifyingKey())).answer(Files.readAllBytes(offer));
        assertThrows(MigrationStreamException.class, () -> CounterV1.load(DeviceStateReader.open(new ByteArrayInputStream(Files.readAllBytes(stream)), next.agreement())));
    }

    @Test
    void aJavaSourceShouldMigrateToAPythonDestinationThroughTheHandshake(@TempDir Path dir) throws Exception {
        SigningKey javaKey = SigningKey.generate(RANDOM);
        byte[] destinationNonce = new byte[32];
        byte[] destinationX25519 = new byte[32];
        RANDOM.nextBytes(destinationNonce);
        RANDOM.nextBytes(destinationX25519);
        DeviceDescriptor local = DeviceDescriptor.load(Path.of("src/test/resources/descriptors/counter-source-v2.json"));
        MigrationSession.Source source = MigrationSession.source(local, Registry.builtin(), true, RANDOM).signWith(javaKey);
        Path offer = dir.resolve("offer.bin");
        Files.write(offer, source.offer());
        Path accept = dir.resolve("accept.bin");
        String pinned = HexFormat.of().formatHex(javaKey.verifyingKey().encoded());
        Run a = python(answerArgs("src/test/resources/descriptors/counter-dest-v1.json", offer, destinationNonce, destinationX25519, accept,
                "--require-signer", pinned, "--require-mac", "--require-signature"));
        assertEquals(0, a.status(), a.out());
        assertTrue(a.out().startsWith("accepted "), a.out());
        HandshakeAgreement agreement = source.complete(Files.readAllBytes(accept));
        String hash = HexFormat.of().formatHex(agreement.handshakeHash());
        assertEquals("accepted " + hash, a.out().strip(), "both sides computed one handshake hash");
        assertEquals(1, agreement.formatVersion(), "the Python destination reads version 1 only");
        assertTrue(agreement.macKey().length == 32, "the accept required a MAC");

        CounterState state = CounterState.sample().asV1();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, agreement)) {
            CounterV1.save(state, w);
        }
        Path stream = dir.resolve("stream.oms");
        Files.write(stream, out.toByteArray());
        Run l = python(loadArgs(stream, offer, accept, destinationX25519));
        assertEquals(0, l.status(), l.out());
        assertTrue(l.out().startsWith("agreed " + hash + " version 1"), l.out());
        assertTrue(l.out().contains("\"label\": \"" + state.label() + "\"") && l.out().contains("\"counter\": " + state.counter())
                && l.out().contains("\"ram\": \"" + HexFormat.of().formatHex(state.ram()) + "\""), "the state round-trips: " + l.out());

        // The Python destination refuses the same stream under another destination's accept (fresh nonce, new hash).
        Path otherAccept = dir.resolve("accept2.bin");
        byte[] otherNonce = destinationNonce.clone();
        otherNonce[0] ^= 1;
        Run a2 = python(answerArgs("src/test/resources/descriptors/counter-dest-v1.json", offer, otherNonce, destinationX25519, otherAccept,
                "--require-signer", pinned));
        assertEquals(0, a2.status(), a2.out());
        Run replay = python(loadArgs(stream, offer, otherAccept, destinationX25519));
        assertEquals(1, replay.status(), replay.out());
        assertTrue(replay.out().startsWith("FAIL"), replay.out());
    }

    @Test
    void aPythonDestinationShouldRefuseAnIncompatibleJavaSourceWithJavasReasons(@TempDir Path dir) throws Exception {
        String destinationFile = "src/test/resources/descriptors/blk-dest-incompatible.json";
        DeviceDescriptor local = DeviceDescriptor.load(Path.of("src/test/resources/descriptors/blk-source.json"));
        MigrationSession.Source source = MigrationSession.source(local, Registry.builtin(), true, RANDOM);
        byte[] offerBytes = source.offer();
        Path offer = dir.resolve("offer.bin");
        Files.write(offer, offerBytes);
        byte[] nonce = new byte[32];
        byte[] x25519 = new byte[32];
        RANDOM.nextBytes(nonce);
        RANDOM.nextBytes(x25519);
        Path answer = dir.resolve("answer.bin");
        Run a = python(answerArgs(destinationFile, offer, nonce, x25519, answer));
        assertEquals(0, a.status(), a.out());
        List<String> lines = a.out().strip().lines().toList();
        assertEquals("refused", lines.getFirst(), a.out());

        MigrationSession.Answer java = MigrationSession.destination(DeviceDescriptor.load(Path.of(destinationFile)),
                new CompatibilityChecker(Registry.builtin()), false, RANDOM).answer(offerBytes);
        assertTrue(!java.accepted() && !java.reasons().isEmpty(), "Java's own destination refuses this pair");
        List<String> javaReasons = java.reasons().stream().map(r -> r.code() + " " + r.subject()).toList();
        List<String> pythonReasons = lines.subList(1, lines.size()).stream().map(s -> s.substring(0, s.indexOf(':'))).toList();
        assertEquals(javaReasons, pythonReasons, "same reason codes and subjects, in the same order:\n" + a.out());

        MigrationRefusedException refused = assertThrows(MigrationRefusedException.class, () -> source.complete(Files.readAllBytes(answer)));
        assertEquals(javaReasons, refused.reasons().stream().map(r -> r.code() + " " + r.subject()).toList(), "the source sees the Python reasons");
        Path stream = dir.resolve("stream.oms");
        assertTrue(!Files.exists(stream), "no stream without an agreement");
        Run l = python(loadArgs(stream, offer, answer, x25519));
        assertEquals(1, l.status(), "a refusal is no agreement to load under: " + l.out());
    }

    private static String[] answerArgs(String descriptor, Path offer, byte[] nonce, byte[] x25519, Path out, String... policy) {
        List<String> l = new ArrayList<>(List.of("answer", descriptor));
        l.addAll(REGISTRIES);
        l.addAll(List.of("--offer", offer.toString(), "--nonce", HexFormat.of().formatHex(nonce), "--x25519", HexFormat.of().formatHex(x25519)));
        l.addAll(List.of(policy));
        l.addAll(List.of("--out", out.toString()));
        return l.toArray(String[]::new);
    }

    private static String[] loadArgs(Path stream, Path offer, Path accept, byte[] x25519) {
        List<String> l = new ArrayList<>(List.of("load", stream.toString()));
        l.addAll(REGISTRIES);
        l.addAll(List.of("--offer", offer.toString(), "--accept", accept.toString(), "--x25519", HexFormat.of().formatHex(x25519)));
        return l.toArray(String[]::new);
    }
}
