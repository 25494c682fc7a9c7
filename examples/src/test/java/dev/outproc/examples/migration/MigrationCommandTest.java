package dev.outproc.examples.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.testing.GoldenCorpus;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The migration tool's commands run in-process on migration-format's corpus: output and exit status. */
class MigrationCommandTest {
    private record Result(int status, String out, String err) {}

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = MigrationCommand.run(new PrintWriter(out), new PrintWriter(err), args);
        return new Result(status, out.toString(), err.toString());
    }

    /** The corpus, descriptors and registries of migration-format's tests, copied out of its test jar. */
    @TempDir
    static Path resources;

    private static String res(String path) {
        try (InputStream in = GoldenCorpus.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + path);
            }
            Path file = resources.resolve(path.substring(1));
            Files.createDirectories(file.getParent());
            Files.write(file, in.readAllBytes());
            return file.toString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"inspect", "verify", "check", "diff", "keygen", "sign"})
    void everyCommandShouldHaveHelp(String command) {
        Result r = run(command, "--help");
        assertEquals(0, r.status());
        assertTrue(r.out().contains("Usage: migration " + command), r.out());
    }

    @Test
    void topLevelWithoutCommandShouldPrintUsage() {
        Result r = run();
        assertEquals(MigrationCommand.EXIT_USAGE, r.status());
        assertTrue(r.out().contains("inspect") && r.out().contains("diff"), r.out());
    }

    @Test
    void inspectShouldPrintSectionsFieldsAndEnvelope() {
        Result r = run("inspect", res("/golden/counter-v2.oms"));
        assertEquals(0, r.status(), r.out());
        String o = r.out();
        assertTrue(o.contains("model:          outproc.dev/example/counter"), o);
        assertTrue(o.contains("format class:   outproc.dev/example/counter/state version 2"), o);
        assertTrue(o.contains("section 4 version 1 #3"), o);
        assertTrue(o.contains("field 3 STRING: \"counter-0\""), o);
        assertTrue(o.contains("field 2 INT64: 72623859790382856 (0x102030405060708)"), o);
        assertTrue(o.contains("vendor example.com/acme schema 3 payload 4 bytes"), o);
        assertTrue(o.contains("trailer: 5 sections, 748 bytes"), o);
    }

    @Test
    void inspectShouldReportACorruptStreamAndFail(@TempDir Path dir) throws IOException {
        byte[] b = Files.readAllBytes(Path.of(res("/golden/counter-v1.oms")));
        b[200] ^= 4;
        Path p = dir.resolve("bad.oms");
        Files.write(p, b);
        Result r = run("inspect", p.toString());
        assertEquals(MigrationCommand.EXIT_FAILED, r.status());
        assertTrue(r.out().contains("error: "), r.out());
    }

    @Test
    void verifyShouldCheckMacAndSignature(@TempDir Path dir) throws IOException {
        Path keyFile = dir.resolve("mac.key");
        Files.writeString(keyFile, HexFormat.of().formatHex(GoldenCorpus.MAC_KEY) + "\n");
        String key = keyFile.toString();
        String signer = GoldenCorpus.SIGNER.verifyingKey().toBase64();
        Result ok = run("verify", res("/golden/counter-v2-mac-signed.oms"), "--mac-key-file", key, "--trusted-signer", signer,
                "--require-mac", "--require-signature");
        assertEquals(0, ok.status(), ok.out());
        assertTrue(ok.out().contains("mac:        verified"), ok.out());
        assertTrue(ok.out().contains("signature:  valid, by " + signer + " (trusted)"), ok.out());

        Result noKey = run("verify", res("/golden/counter-v2-mac-signed.oms"), "--require-mac");
        assertEquals(MigrationCommand.EXIT_FAILED, noKey.status(), noKey.out());
        assertTrue(noKey.out().contains("present, not verified"), noKey.out());

        byte[] wrong = GoldenCorpus.MAC_KEY.clone();
        wrong[5] ^= 1;
        Path wrongFile = dir.resolve("wrong.key");
        Files.writeString(wrongFile, HexFormat.of().formatHex(wrong));
        Result bad = run("verify", res("/golden/counter-v2-mac-signed.oms"), "--mac-key-file", wrongFile.toString());
        assertEquals(MigrationCommand.EXIT_FAILED, bad.status());
        assertTrue(bad.out().contains("NOT VERIFIED: MAC does not verify"), bad.out());

        Result unsigned = run("verify", res("/golden/counter-v1.oms"), "--require-signature");
        assertEquals(MigrationCommand.EXIT_FAILED, unsigned.status());
        Result onCommandLine = run("verify", res("/golden/counter-v2-mac-signed.oms"), "--mac-key", HexFormat.of().formatHex(GoldenCorpus.MAC_KEY));
        assertEquals(MigrationCommand.EXIT_USAGE, onCommandLine.status(), "a key on the command line is not an option");
        Result plain = run("verify", res("/golden/counter-v1.oms"));
        assertEquals(0, plain.status(), plain.out());
        assertTrue(plain.out().contains("digests:    verified"), plain.out());
    }

    @Test
    void checkShouldExitWithTheNumberOfIncompatibilities() {
        Result ok = run("check", res("/descriptors/blk-source.json"), res("/descriptors/blk-dest-memory.json"));
        assertEquals(0, ok.status(), ok.out());
        assertTrue(ok.out().contains("compatible: format version 2"), ok.out());

        Result down = run("check", res("/descriptors/counter-source-v2.json"), res("/descriptors/counter-dest-v1.json"));
        assertEquals(0, down.status(), down.out());
        assertTrue(down.out().contains("compatible: format version 1"), down.out());

        Result bad = run("check", res("/descriptors/blk-source.json"), res("/descriptors/blk-dest-incompatible.json"));
        assertEquals(6, bad.status(), bad.out());
        assertTrue(bad.out().contains("PARAMETER_NOT_ALLOWED blk_size: destination: parameter blk_size value 4000 is not one of [512, 1024, 2048, 4096]"), bad.out());
        assertTrue(bad.out().contains("NO_COMMON_VERSION virtio-spec.org/pci/virtio-blk/state: source writes [1, 2], destination reads [7]"), bad.out());
        assertTrue(bad.out().contains("incompatible: 6 reason(s)"), bad.out());
    }

    @Test
    void checkShouldUseExtraRegistriesAndSignedModelRules() {
        Result r = run("check", "--no-builtin", res("/descriptors/counter-source-v2.json"), res("/descriptors/counter-dest-v1.json"));
        assertEquals(1, r.status(), r.out());
        assertTrue(r.out().contains("UNKNOWN_MODEL"), r.out());
        Result withFile = run("check", "--no-builtin", "--registry", res("/registry/counter-r2.json"),
                res("/descriptors/counter-source-v2.json"), res("/descriptors/counter-dest-v1.json"));
        assertEquals(0, withFile.status(), withFile.out());
        Result signed = run("check", "--require-signed-models", res("/descriptors/counter-source-v2.json"), res("/descriptors/counter-dest-v1.json"));
        assertEquals(1, signed.status(), signed.out());
        assertTrue(signed.out().contains("UNTRUSTED_MODEL"), signed.out());
    }

    @Test
    void diffShouldPassCompatibleAndFlagBreakingChanges() {
        Result ok = run("diff", res("/registry/counter-r1.json"), res("/registry/counter-r2.json"));
        assertEquals(0, ok.status(), ok.out());
        assertTrue(ok.out().contains("COMPATIBLE FORMAT_VERSION_ADDED outproc.dev/example/counter/state v2"), ok.out());
        assertTrue(ok.out().contains("no breaking changes"), ok.out());

        Result bad = run("diff", res("/registry/counter-r2.json"), res("/registry/counter-r3-breaking.json"));
        assertEquals(7, bad.status(), bad.out());
        assertTrue(bad.out().contains("BREAKING FIELD_TYPE_CHANGED outproc.dev/example/counter/state v2 section config field counter: tag 2: int64 -> int32"), bad.out());
        assertTrue(bad.out().contains("7 breaking change(s)"), bad.out());

        Result missing = run("diff", "--model", "example.com/none", res("/registry/counter-r1.json"), res("/registry/counter-r2.json"));
        assertEquals(MigrationCommand.EXIT_USAGE, missing.status());
    }

    /** A host command such as the examples launcher. */
    @picocli.CommandLine.Command(name = "outproc-examples", mixinStandardHelpOptions = true)
    static final class Host implements Runnable {
        @Override
        public void run() {
            // only subcommands do something
        }
    }

    @Test
    void shouldWorkAsSubcommandOfAnotherCommand() {
        picocli.CommandLine top = new picocli.CommandLine(new Host());
        top.addSubcommand("migration", new MigrationCommand());
        StringWriter out = new StringWriter();
        top.setOut(new PrintWriter(out));
        int status = top.execute("migration", "check", res("/descriptors/blk-source.json"), res("/descriptors/blk-dest-incompatible.json"));
        assertEquals(6, status, out.toString());
        assertTrue(out.toString().contains("incompatible: 6 reason(s)"), out.toString());
        StringWriter help = new StringWriter();
        top.setOut(new PrintWriter(help));
        assertEquals(0, top.execute("migration", "diff", "--help"));
        assertTrue(help.toString().contains("Usage: outproc-examples migration diff"), help.toString());
    }

    @Test
    void keygenSignAndCheckShouldRequireTheTrustedSignature(@TempDir Path dir) throws IOException {
        Path key = dir.resolve("vendor.key");
        Result gen = run("keygen", key.toString());
        assertEquals(0, gen.status(), gen.err());
        String pub = gen.out().strip();
        assertEquals(32, java.util.Base64.getDecoder().decode(pub).length);
        assertEquals(1, run("keygen", key.toString()).status(), "an existing key file is never overwritten");

        Path signed = dir.resolve("signed.json");
        Result sign = run("sign", res("/registry/counter-r2.json"), "--model", "outproc.dev/example/counter", "--signer", "outproc.dev",
                "--key", key.toString(), "-o", signed.toString());
        assertEquals(0, sign.status(), sign.err());
        assertTrue(sign.out().contains(pub), sign.out());

        Result trusted = run("check", "--no-builtin", "--registry", signed.toString(), "--trusted-model-signer", pub,
                "--require-signed-models", res("/descriptors/counter-source-v2.json"), res("/descriptors/counter-dest-v1.json"));
        assertEquals(0, trusted.status(), trusted.out());

        // Someone edits the signed entry afterwards: the signature no longer verifies.
        Path edited = dir.resolve("edited.json");
        Files.writeString(edited, Files.readString(signed).replace("\"fast\" ]", "\"fast\", \"turbo\" ]"));
        assertTrue(!Files.readString(edited).equals(Files.readString(signed)), "the edit must apply");
        Result tampered = run("check", "--no-builtin", "--registry", edited.toString(), "--trusted-model-signer", pub,
                "--require-signed-models", res("/descriptors/counter-source-v2.json"), res("/descriptors/counter-dest-v1.json"));
        assertEquals(1, tampered.status(), tampered.out());
        assertTrue(tampered.out().contains("SIGNATURE_INVALID outproc.dev/example/counter"), tampered.out());
    }

    private static final String MODEL = "example.org/verify-model";
    private static final String FORMAT = "example.org/verify-model/state";
    /** Section 1 "config" required (int32 tag 1, no default), section 2 "extra" optional. */
    private static final String REGISTRY = "{\"registryFormat\": 1, \"models\": [{\"id\": \"" + MODEL + "\", \"revision\": 1, \"formatClasses\": "
            + "[{\"id\": \"" + FORMAT + "\", \"versions\": [{\"version\": 1, \"sections\": ["
            + "{\"id\": 1, \"name\": \"config\", \"version\": 1, \"fields\": [{\"tag\": 1, \"name\": \"x\", \"type\": \"int32\"}]},"
            + "{\"id\": 2, \"name\": \"extra\", \"version\": 1, \"optional\": true, \"fields\": [{\"tag\": 1, \"name\": \"y\", \"type\": \"int32\"}]}"
            + "]}]}]}]}";

    private interface Sections {
        void write(DeviceStateWriter w) throws IOException;
    }

    private static String stream(Path dir, String name, Sections sections) throws IOException {
        Path file = dir.resolve(name);
        try (OutputStream out = Files.newOutputStream(file);
                DeviceStateWriter w = DeviceStateWriter.open(out, HandshakeAgreement.builder(MODEL, FORMAT, 1).implementationId("example.org/verify-model/impl").build())) {
            sections.write(w);
            w.finish();
        }
        return file.toString();
    }

    private static void config(DeviceStateWriter w) throws IOException {
        w.beginSection(1, 1, true).int32(1, 7);
        w.endSection();
    }

    private static String registryFile(Path dir) throws IOException {
        Path file = dir.resolve("verify-model.json");
        Files.writeString(file, REGISTRY);
        return file.toString();
    }

    @Test
    void verifyShouldCheckTheModelAgainstTheRegistry(@TempDir Path dir) throws IOException {
        String file = stream(dir, "ok.oms", MigrationCommandTest::config);
        Result unknown = run("verify", file);
        assertEquals(MigrationCommand.EXIT_FAILED, unknown.status(), unknown.out());
        assertTrue(unknown.out().contains("NOT VERIFIED: model " + MODEL + " is not in the registry"), unknown.out());
        Result known = run("verify", file, "--registry", registryFile(dir));
        assertEquals(0, known.status(), known.out());
        assertTrue(known.out().contains("format:     " + FORMAT + " version 1") && known.out().contains("read:       config"), known.out());
        Result shipped = run("verify", res("/golden/counter-v2.oms"), "--no-builtin", "--registry", registryFile(dir));
        assertEquals(MigrationCommand.EXIT_FAILED, shipped.status(), "--no-builtin drops the shipped counter model: " + shipped.out());
    }

    @Test
    void verifyShouldRequireTheRequiredSectionsAndTheSchemasTypes(@TempDir Path dir) throws IOException {
        String registry = registryFile(dir);
        Result missing = run("verify", stream(dir, "missing.oms", w -> {
            w.beginSection(2, 1, false).int32(1, 3);
            w.endSection();
        }), "--registry", registry);
        assertEquals(MigrationCommand.EXIT_FAILED, missing.status(), missing.out());
        assertTrue(missing.out().contains("NOT VERIFIED: required section config"), missing.out());
        Result wrongType = run("verify", stream(dir, "type.oms", w -> {
            w.beginSection(1, 1, true).string(1, "seven");
            w.endSection();
        }), "--registry", registry);
        assertEquals(MigrationCommand.EXIT_FAILED, wrongType.status(), wrongType.out());
        assertTrue(wrongType.out().startsWith("model:") && wrongType.out().contains("NOT VERIFIED: "), wrongType.out());
        Result noVersion = run("verify", res("/golden/counter-v2.oms"), "--registry", registry);
        assertEquals(0, noVersion.status(), "the shipped counter model still verifies with another file merged: " + noVersion.out());
    }

    @Test
    void verifyShouldSkipWhatAReaderNeedNotLookInto(@TempDir Path dir) throws IOException {
        String registry = registryFile(dir);
        // An unknown skippable section whose list repeats a tag and holds a record repeating one (stream-format.md §5.3 rule 6).
        String skippable = stream(dir, "skippable.oms", w -> {
            config(w);
            w.beginSection(0x77, 1, false).int32(5, 1).int32(5, 2).beginRecord(6).bool(1, true).bool(1, false).endRecord();
            w.endSection();
        });
        Result ok = run("verify", skippable, "--registry", registry);
        assertEquals(0, ok.status(), ok.out());
        assertTrue(ok.out().contains("sections:   2,") && ok.out().contains("\nverified"), ok.out());
        Result inspect = run("inspect", skippable);
        assertEquals(MigrationCommand.EXIT_FAILED, inspect.status(), "inspect decodes every list and shows the repeat: " + inspect.out());

        // Inside an unknown field of a known section the library's reader checks what rule 6 lets it check (it MAY).
        Result skippedField = run("verify", stream(dir, "field.oms", w -> {
            w.beginSection(1, 1, true).int32(1, 7).beginRecord(9).int8(1, 1).int8(1, 2).endRecord();
            w.endSection();
        }), "--registry", registry);
        assertEquals(MigrationCommand.EXIT_FAILED, skippedField.status(), skippedField.out());
        assertTrue(skippedField.out().contains("appears twice"), skippedField.out());

        String mustUnderstand = stream(dir, "must.oms", w -> {
            config(w);
            w.beginSection(0x77, 1, true).int32(5, 1);
            w.endSection();
        });
        Result refused = run("verify", mustUnderstand, "--registry", registry);
        assertEquals(MigrationCommand.EXIT_FAILED, refused.status(), refused.out());
        assertTrue(refused.out().contains("NOT VERIFIED: "), refused.out());
    }
}
