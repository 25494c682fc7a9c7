package dev.outproc.examples.migration;

import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.CompatibilityReport;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.model.DeviceModel;
import dev.outproc.migration.model.FormatClass;
import dev.outproc.migration.model.FormatVersion;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.SchemaChange;
import dev.outproc.migration.model.SchemaDiff;
import dev.outproc.migration.model.SignatureCheck;
import dev.outproc.migration.model.StateSchemaReader;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.StreamFormatException;
import dev.outproc.migration.stream.StreamHeader;
import dev.outproc.migration.stream.StreamTrailer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * The {@code migration} tool: {@code inspect} and {@code verify} device-state streams, {@code check} two descriptors
 * for compatibility (exit status = number of incompatibilities), {@code diff} two versions of a model's schema (exit
 * status = number of breaking changes, at most 100), {@code keygen} and {@code sign} to vouch for registry entries.
 *
 * <p>Use it directly ({@link #main}), run it in-process ({@link #run(PrintWriter, PrintWriter, String...)}), or add it to
 * another picocli command:
 * {@snippet :
 * CommandLine top = new CommandLine(new Examples());
 * top.addSubcommand("migration", new MigrationCommand());
 * }
 */
@Command(name = "migration", mixinStandardHelpOptions = true, version = "outproc migration-format 1",
        description = "Inspect, verify and check outproc device-state streams and device models.",
        subcommands = {MigrationCommand.Inspect.class, MigrationCommand.Verify.class, MigrationCommand.Check.class,
                MigrationCommand.Diff.class, MigrationCommand.Keygen.class, MigrationCommand.Sign.class,
                HandshakeCommands.Relay.class, HandshakeCommands.Connect.class, HandshakeCommands.Serve.class})
public final class MigrationCommand implements Callable<Integer> {
    /** Exit status when a stream or file cannot be read or does not verify. */
    public static final int EXIT_FAILED = 1;
    /** Exit status for a usage error. */
    public static final int EXIT_USAGE = 2;

    @Spec
    CommandLine.Model.CommandSpec spec;

    /** Creates the command. */
    public MigrationCommand() {}

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return EXIT_USAGE;
    }

    /**
     * Runs the tool in-process.
     *
     * @param out standard output
     * @param err standard error
     * @param args arguments, e.g. {@code check src.json dst.json}
     * @return the exit status
     */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new MigrationCommand());
        cl.setOut(out);
        cl.setErr(err);
        int status = cl.execute(args);
        out.flush();
        err.flush();
        return status;
    }

    /**
     * Entry point.
     *
     * @param args command-line arguments
     */
    public static void main(String[] args) {
        System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    static Set<VerifyingKey> keys(List<String> base64) {
        Set<VerifyingKey> s = new LinkedHashSet<>();
        for (String k : base64) {
            s.add(VerifyingKey.fromBase64(k));
        }
        return s;
    }

    static Registry registry(List<Path> files, boolean builtin) throws IOException {
        Registry r = builtin ? ExampleModels.registry() : Registry.empty();
        for (Path f : files) {
            r = r.merge(Registry.load(f));
        }
        return r;
    }

    /**
     * Reads a 32-byte secret from a file of 64 hex digits (surrounding white space ignored). Secrets come from files
     * or inherited fds ({@code /dev/fd/N}), never from the command line, where every user of the host can read them.
     */
    static byte[] readKeyFile(Path file, String what) throws IOException {
        byte[] raw = java.nio.file.Files.readAllBytes(file);
        if (raw.length > 1024) {
            throw new IOException(what + " file " + file + " is " + raw.length + " bytes; expected 64 hex digits");
        }
        String hex = new String(raw, java.nio.charset.StandardCharsets.US_ASCII).strip();
        if (!hex.matches("[0-9a-fA-F]{64}")) {
            throw new IOException(what + " file " + file + " must hold 64 hex digits");
        }
        return HexFormat.of().parseHex(hex);
    }

    /** Options shared by inspect and verify. */
    static class StreamOptions {
        @Parameters(index = "0", paramLabel = "STREAM", description = "Device-state stream file.")
        Path stream;

        @Option(names = "--mac-key-file", paramLabel = "FILE",
                description = "File holding the MAC key (64 hex digits) to verify the trailer MAC with; /dev/fd/N reads an inherited fd. Keys never go on the command line.")
        Path macKeyFile;

        @Option(names = "--trusted-signer", paramLabel = "BASE64", description = "Ed25519 public key whose trailer signature is accepted; repeatable.")
        List<String> trustedSigners = new ArrayList<>();

        byte[] macKeyBytes() throws IOException {
            return macKeyFile == null ? null : readKeyFile(macKeyFile, "MAC key");
        }
    }

    /** {@code inspect}: decode a stream and print header, sections, fields and trailer. */
    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = "Decode a device-state stream and print its header, sections, fields and trailer.")
    static final class Inspect implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @CommandLine.Mixin
        StreamOptions options = new StreamOptions();

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            try (FileChannel ch = FileChannel.open(options.stream, StandardOpenOption.READ);
                    DeviceStateReader r = DeviceStateReader.openForInspection(ch, options.macKeyBytes(), keys(options.trustedSigners))) {
                new StreamPrinter(out, true).walk(r);
                return 0;
            } catch (IOException | IllegalArgumentException e) {
                out.println("error: " + e.getMessage());
                return EXIT_FAILED;
            }
        }
    }

    /**
     * {@code verify}: read a stream as a file without a handshake (stream-format.md §7.5): the model, format class and
     * format version must be in the registry, digests are required, the sections are read by the format version's
     * schema (required sections present, load-time checks hold; unknown skippable sections and unknown fields are
     * skipped as §5.3 rule 6 allows), then digests, transcript, MAC and signature. {@code inspect} is the decoder that
     * shows everything, whatever the registry says.
     */
    @Command(name = "verify", mixinStandardHelpOptions = true,
            description = "Verify a stream as a file reader must (stream-format.md 7.5): model, format class and version from the "
                    + "registry, digests required, the sections read by the registry's schema, then MAC (with --mac-key-file) "
                    + "and signature. Exit status 0 when it verifies.")
    static final class Verify implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @CommandLine.Mixin
        StreamOptions options = new StreamOptions();

        @Option(names = "--require-mac", description = "Fail unless a MAC is present and verified.")
        boolean requireMac;

        @Option(names = "--require-signature", description = "Fail unless the trailer is signed (by a --trusted-signer, if given).")
        boolean requireSignature;

        @Option(names = "--registry", paramLabel = "FILE", description = "Registry file merged over the shipped models; repeatable.")
        List<Path> registries = new ArrayList<>();

        @Option(names = "--no-builtin", description = "Do not load the shipped models.")
        boolean noBuiltin;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            try {
                Registry reg = registry(registries, !noBuiltin);
                StreamHeader h;
                try (FileChannel ch = FileChannel.open(options.stream, StandardOpenOption.READ);
                        DeviceStateReader peek = DeviceStateReader.openForInspection(ch, null, Set.of())) {
                    h = peek.header();
                }
                DeviceModel model = reg.model(h.modelId())
                        .orElseThrow(() -> new StreamFormatException("model " + h.modelId() + " is not in the registry"));
                FormatClass format = model.formatClass(h.formatClass()).orElseThrow(() -> new StreamFormatException(
                        "format class " + h.formatClass() + " is not one of model " + model.id() + "'s"));
                FormatVersion version = format.version(h.formatVersion()).orElseThrow(() -> new StreamFormatException(
                        "format version " + h.formatVersion() + " is not defined for format class " + format.id()));
                out.println("model:      " + model.id() + " (revision " + model.revision() + ")");
                out.println("format:     " + format.id() + " version " + version.version());
                out.println("written by: " + h.implementationId());
                try (FileChannel ch = FileChannel.open(options.stream, StandardOpenOption.READ);
                        DeviceStateReader r = DeviceStateReader.openUnattested(ch, model.id(), format.id(), version.version(), version.version(),
                                options.macKeyBytes(), keys(options.trustedSigners))) {
                    Map<String, Map<String, Object>> state = StateSchemaReader.read(r, version);
                    StreamTrailer t = r.finish();
                    out.println("read:       " + String.join(", ", state.keySet()) + " (by the registry's schema; load-time checks hold)");
                    out.println("sections:   " + t.sectionCount() + ", " + t.streamBytes() + " bytes");
                    out.println("digests:    verified");
                    out.println("transcript: " + (t.transcript() == null ? "absent" : HexFormat.of().formatHex(t.transcript())));
                    out.println("mac:        " + (t.macVerified() ? "verified" : t.macPresent() ? "present, not verified (no --mac-key-file)" : "absent"));
                    out.println("signature:  " + (t.signer() == null ? "absent" : "valid, by " + t.signer().toBase64()
                            + (options.trustedSigners.isEmpty() ? " (signer not pinned)" : " (trusted)")));
                    boolean ok = (!requireMac || t.macVerified()) && (!requireSignature || t.signer() != null);
                    out.println(ok ? "verified" : "NOT VERIFIED: " + (requireMac && !t.macVerified() ? "MAC required " : "")
                            + (requireSignature && t.signer() == null ? "signature required" : ""));
                    return ok ? 0 : EXIT_FAILED;
                }
            } catch (IOException | IllegalArgumentException e) {
                out.println("NOT VERIFIED: " + e.getMessage());
                return EXIT_FAILED;
            }
        }
    }

    /** {@code check}: compare a source and a destination descriptor. */
    @Command(name = "check", mixinStandardHelpOptions = true,
            description = "Check whether a source can migrate to a destination, before any state moves. Prints the reasons; exit status = number of incompatibilities.")
    static final class Check implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "SOURCE", description = "Source descriptor (JSON).")
        Path source;

        @Parameters(index = "1", paramLabel = "DESTINATION", description = "Destination descriptor (JSON).")
        Path destination;

        @Option(names = "--registry", paramLabel = "FILE", description = "Registry file merged over the shipped models; repeatable.")
        List<Path> registries = new ArrayList<>();

        @Option(names = "--no-builtin", description = "Do not load the shipped models.")
        boolean noBuiltin;

        @Option(names = "--trusted-model-signer", paramLabel = "BASE64", description = "Ed25519 key trusted to sign model entries; repeatable.")
        List<String> trusted = new ArrayList<>();

        @Option(names = "--require-signed-models", description = "Refuse models without a trusted signature.")
        boolean requireSigned;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            try {
                Registry reg = registry(registries, !noBuiltin);
                CompatibilityReport report = new CompatibilityChecker(reg, keys(trusted), requireSigned)
                        .check(DeviceDescriptor.load(source), DeviceDescriptor.load(destination));
                for (Incompatibility i : report.reasons()) {
                    out.println(i);
                }
                if (report.compatible()) {
                    out.println("compatible: format version " + report.chosenVersion());
                } else {
                    out.println("incompatible: " + report.reasons().size() + " reason(s)");
                }
                return report.reasons().size();
            } catch (IOException | IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                // A file that cannot be read is one incompatibility: the check cannot pass.
                return 1;
            }
        }
    }

    /** {@code diff}: flag breaking changes between two versions of a model. */
    @Command(name = "diff", mixinStandardHelpOptions = true,
            description = "Compare two versions of device models (registry files) and flag breaking changes. Exit status = number of breaking changes (at most 100).")
    static final class Diff implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "OLD", description = "Older registry file.")
        Path older;

        @Parameters(index = "1", paramLabel = "NEW", description = "Newer registry file.")
        Path newer;

        @Option(names = "--model", paramLabel = "ID", description = "Only this model (default: every model in OLD).")
        String model;

        @Option(names = "--trusted-model-signer", paramLabel = "BASE64", description = "Also report each entry's signature status against these keys.")
        List<String> trusted = new ArrayList<>();

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            try {
                Registry a = Registry.load(older);
                Registry b = Registry.load(newer);
                int breaking = 0;
                for (DeviceModel m : a.models()) {
                    if (model != null && !model.equals(m.id())) {
                        continue;
                    }
                    out.println("model " + m.id() + ": revision " + m.revision() + " -> "
                            + b.model(m.id()).map(x -> Integer.toString(x.revision())).orElse("removed"));
                    if (!trusted.isEmpty()) {
                        SignatureCheck sc = b.verify(m.id(), keys(trusted));
                        out.println("  signature: " + sc.status() + (sc.signer() == null ? "" : " (" + sc.signer() + ")"));
                    }
                    if (b.model(m.id()).isEmpty()) {
                        out.println("  BREAKING MODEL_REMOVED " + m.id());
                        breaking++;
                        continue;
                    }
                    List<SchemaChange> changes = SchemaDiff.diff(m, b.model(m.id()).get());
                    for (SchemaChange c : changes) {
                        out.println("  " + c);
                        if (c.severity() == SchemaChange.Severity.BREAKING) {
                            breaking++;
                        }
                    }
                    if (changes.isEmpty()) {
                        out.println("  no changes");
                    }
                }
                if (model != null && a.model(model).isEmpty()) {
                    spec.commandLine().getErr().println("error: " + older + " has no model " + model);
                    return EXIT_USAGE;
                }
                out.println(breaking == 0 ? "no breaking changes" : breaking + " breaking change(s)");
                return Math.min(breaking, 100);
            } catch (IOException | IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                return EXIT_USAGE;
            }
        }
    }

    /** {@code keygen}: create an Ed25519 key for signing registry entries. */
    @Command(name = "keygen", mixinStandardHelpOptions = true,
            description = "Create an Ed25519 signing key: writes the 32-byte seed as hex to KEYFILE (owner-only) and prints the public key (base64).")
    static final class Keygen implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "KEYFILE", description = "File to create for the private seed; must not exist.")
        Path keyFile;

        @Override
        public Integer call() {
            try {
                byte[] seed = new byte[32];
                new java.security.SecureRandom().nextBytes(seed);
                java.util.Set<java.nio.file.attribute.PosixFilePermission> ownerOnly = java.nio.file.attribute.PosixFilePermissions.fromString("rw-------");
                try {
                    java.nio.file.Files.createFile(keyFile, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(ownerOnly));
                } catch (UnsupportedOperationException e) {
                    java.nio.file.Files.createFile(keyFile);
                }
                java.nio.file.Files.writeString(keyFile, HexFormat.of().formatHex(seed) + "\n");
                spec.commandLine().getOut().println(SigningKey.fromSeed(seed).verifyingKey().toBase64());
                return 0;
            } catch (IOException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                return EXIT_FAILED;
            }
        }
    }

    /** {@code sign}: add a signature over one model entry. */
    @Command(name = "sign", mixinStandardHelpOptions = true,
            description = "Sign a model entry of a registry file with a key from keygen and write the signed registry.")
    static final class Sign implements Callable<Integer> {
        @Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "REGISTRY", description = "Registry file.")
        Path registry;

        @Option(names = "--model", required = true, paramLabel = "ID", description = "Model to sign.")
        String model;

        @Option(names = "--signer", required = true, paramLabel = "NAME", description = "Who vouches (informative).")
        String signer;

        @Option(names = "--key", required = true, paramLabel = "KEYFILE", description = "Seed file written by keygen.")
        Path key;

        @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "Signed registry to write.")
        Path output;

        @Override
        public Integer call() {
            try {
                SigningKey k = SigningKey.fromSeed(readKeyFile(key, "signing key"));
                Registry signed = Registry.load(registry).sign(model, signer, k);
                java.nio.file.Files.write(output, signed.toJson());
                spec.commandLine().getOut().println("signed " + model + " as " + signer + " with " + k.verifyingKey().toBase64());
                return 0;
            } catch (IOException | IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                return EXIT_FAILED;
            }
        }
    }
}
