package dev.outproc.examples.migration;

import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.model.Registry;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import picocli.CommandLine.Option;

/**
 * The migration options every example back-end takes (integration.md §7), as a picocli mixin: where its handshake
 * endpoint listens, and what protection it gives as a source and requires as a destination. Keys come from files.
 */
public final class MigrationOptions {
    @Option(names = "--migration-socket", paramLabel = "PATH",
            description = "Serve the migration handshake on this Unix socket (see 'migration relay'); without it the device takes part in no migration.")
    Path socket;

    @Option(names = "--migration-registry", paramLabel = "FILE", description = "Registry file merged over the shipped device models; repeatable.")
    List<Path> registries = new ArrayList<>();

    @Option(names = "--migration-signing-key", paramLabel = "FILE",
            description = "As source, sign the state with this Ed25519 seed (64 hex digits, from 'migration keygen'); /dev/fd/N reads an inherited fd.")
    Path signingKey;

    @Option(names = "--migration-trusted-signer", paramLabel = "BASE64",
            description = "As destination, require the state to be signed by this Ed25519 key; repeatable.")
    List<String> trustedSigners = new ArrayList<>();

    @Option(names = "--migration-no-mac", description = "Do not offer, nor require, a MAC keyed by the handshake (trusted local transfers only).")
    boolean noMac;

    /** Creates the options (picocli fills them). */
    public MigrationOptions() {}

    /** @return the handshake socket, or null when migration is off */
    public Path socket() {
        return socket;
    }

    /**
     * Builds the endpoint's sessions for a device.
     *
     * @param descriptor what the device is (model, implementation, parameters, versions)
     * @return the endpoint sessions
     * @throws IOException if a registry or key file cannot be read
     */
    public MigrationEndpointServer.Sessions sessions(DeviceDescriptor descriptor) throws IOException {
        Registry registry = ExampleModels.registry();
        for (Path f : registries) {
            registry = registry.merge(Registry.load(f));
        }
        SigningKey key = signingKey == null ? null : SigningKey.fromSeed(MigrationCommand.readKeyFile(signingKey, "signing key"));
        Set<VerifyingKey> pinned = new LinkedHashSet<>();
        for (String k : trustedSigners) {
            pinned.add(VerifyingKey.fromBase64(k));
        }
        Registry reg = registry;
        SecureRandom random = new SecureRandom();
        boolean mac = !noMac;
        return new MigrationEndpointServer.Sessions(
                () -> MigrationSession.source(descriptor, reg, mac, random).signWith(key),
                () -> MigrationSession.destination(descriptor, new CompatibilityChecker(reg), mac, random).requireSignatureBy(pinned));
    }
}
