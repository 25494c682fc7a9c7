package dev.outproc.migration.model;

import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.internal.Crypto;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * An immutable set of device models with the signatures that vouch for them. Registries are JSON files
 * ({@code migration-format/docs/registry-format.md}); they merge, and each entry can be signed with Ed25519 so that
 * a destination can check who vouched for a model before it accepts a migration.
 *
 * {@snippet :
 * Registry registry = Registry.builtin().merge(Registry.load(Path.of("site-models.json")));
 * DeviceModel blk = registry.model("virtio-spec.org/pci/virtio-blk").orElseThrow();
 * }
 */
public final class Registry {
    /** Shipped registry resources, merged by {@link #builtin()}. */
    public static final List<String> BUILTIN_RESOURCES = List.of("virtio-blk.json", "example-counter.json");

    private static final byte[] SIGNATURE_LABEL = "outproc-registry-entry-v1\n".getBytes(StandardCharsets.US_ASCII);

    private final Map<String, DeviceModel> models;
    private final List<RegistrySignature> signatures;

    private Registry(Map<String, DeviceModel> models, List<RegistrySignature> signatures) {
        this.models = models;
        this.signatures = List.copyOf(signatures);
    }

    /** @return a registry without models */
    public static Registry empty() {
        return new Registry(Map.of(), List.of());
    }

    /**
     * Builds a registry from models made in code; they pass the same checks as a parsed file.
     *
     * @param models the models
     * @return the registry, unsigned
     * @throws RegistryException if a model breaks a rule of registry-format.md
     */
    public static Registry of(List<DeviceModel> models) throws RegistryException {
        return parse(RegistryCodec.encode(models, List.of(), false));
    }

    /**
     * Parses a registry file.
     *
     * @param json UTF-8 JSON
     * @return the registry
     * @throws RegistryException if the file is malformed, over a limit or contradicts itself
     */
    public static Registry parse(byte[] json) throws RegistryException {
        RegistryCodec.Parsed p = RegistryCodec.decode(json);
        Map<String, DeviceModel> m = new LinkedHashMap<>();
        for (DeviceModel d : p.models()) {
            m.put(d.id(), d);
        }
        return new Registry(m, p.signatures());
    }

    /**
     * Loads a registry file.
     *
     * @param file path
     * @return the registry
     * @throws IOException if the file cannot be read or is not a valid registry
     */
    public static Registry load(Path file) throws IOException {
        if (Files.size(file) > dev.outproc.migration.internal.JsonTree.MAX_DOCUMENT_BYTES) {
            throw new RegistryException("registry file " + file + " is larger than " + dev.outproc.migration.internal.JsonTree.MAX_DOCUMENT_BYTES + " bytes");
        }
        try {
            return parse(Files.readAllBytes(file));
        } catch (RegistryException e) {
            throw new RegistryException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Loads a registry shipped with this library ({@link #BUILTIN_RESOURCES}).
     *
     * @param name resource name
     * @return the registry
     * @throws IOException if the resource is missing or invalid
     */
    public static Registry loadResource(String name) throws IOException {
        try (InputStream in = Registry.class.getResourceAsStream("/dev/outproc/migration/registry/" + name)) {
            if (in == null) {
                throw new RegistryException("no shipped registry named " + name);
            }
            return parse(in.readAllBytes());
        }
    }

    /**
     * Returns the merge of every shipped registry: the virtio-blk model and the example model.
     *
     * @return the shipped models
     * @throws IOException if a shipped resource is invalid (a packaging bug)
     */
    public static Registry builtin() throws IOException {
        Registry r = empty();
        for (String name : BUILTIN_RESOURCES) {
            r = r.merge(loadResource(name));
        }
        return r;
    }

    /** @return the models, in file order */
    public Collection<DeviceModel> models() {
        return models.values();
    }

    /** @return the signatures */
    public List<RegistrySignature> signatures() {
        return signatures;
    }

    /**
     * Finds a model by id.
     *
     * @param id model id
     * @return the model, if present
     */
    public Optional<DeviceModel> model(String id) {
        return Optional.ofNullable(models.get(id));
    }

    /**
     * Finds models with a PCI alias that matches.
     *
     * @param vendor vendor id
     * @param device device id
     * @param subsystemVendor subsystem vendor or -1
     * @param subsystemDevice subsystem device or -1
     * @param revision revision or -1
     * @return matching models
     */
    public List<DeviceModel> findByPci(int vendor, int device, int subsystemVendor, int subsystemDevice, int revision) {
        return models.values().stream()
                .filter(m -> m.pciAliases().stream().anyMatch(a -> a.matches(vendor, device, subsystemVendor, subsystemDevice, revision)))
                .toList();
    }

    /**
     * Merges two registries. A model present in both is taken from the one with the higher revision; equal
     * revisions with different content are a conflict. Signatures are kept for the entries that survive.
     *
     * @param other the other registry
     * @return the merge
     * @throws RegistryException if both hold different content under one id and revision
     */
    public Registry merge(Registry other) throws RegistryException {
        Map<String, DeviceModel> m = new LinkedHashMap<>(models);
        for (DeviceModel d : other.models.values()) {
            DeviceModel mine = m.get(d.id());
            if (mine == null || d.revision() > mine.revision()) {
                m.put(d.id(), d);
            } else if (d.revision() == mine.revision() && !Arrays.equals(canonicalBytes(d), canonicalBytes(mine))) {
                throw new RegistryException("model " + d.id() + " revision " + d.revision() + " differs between the merged registries");
            }
        }
        List<RegistrySignature> sigs = new ArrayList<>();
        keepSignatures(signatures, models, m, sigs);
        keepSignatures(other.signatures, other.models, m, sigs);
        return new Registry(m, sigs);
    }

    /** Keeps a signature only if the merged entry is, byte for byte, the entry it was made over. */
    private static void keepSignatures(List<RegistrySignature> from, Map<String, DeviceModel> source,
            Map<String, DeviceModel> merged, List<RegistrySignature> into) {
        for (RegistrySignature s : from) {
            DeviceModel signed = source.get(s.modelId());
            DeviceModel kept = merged.get(s.modelId());
            boolean duplicate = into.stream().anyMatch(x -> x.modelId().equals(s.modelId()) && x.key().equals(s.key())
                    && Arrays.equals(x.signature(), s.signature()));
            if (signed != null && kept != null && !duplicate && Arrays.equals(canonicalBytes(signed), canonicalBytes(kept))) {
                into.add(s);
            }
        }
    }

    /**
     * Returns a registry with a model added or replaced (its old signatures are dropped).
     *
     * @param model the model
     * @return the new registry
     */
    public Registry withModel(DeviceModel model) {
        Map<String, DeviceModel> m = new LinkedHashMap<>(models);
        m.put(model.id(), model);
        return new Registry(m, signatures.stream().filter(s -> !s.modelId().equals(model.id())).toList());
    }

    /**
     * Signs a model entry.
     *
     * @param modelId the model
     * @param signer who vouches
     * @param key the signing key
     * @return a registry with the signature added
     * @throws RegistryException if the model is not present
     */
    public Registry sign(String modelId, String signer, SigningKey key) throws RegistryException {
        DeviceModel m = model(modelId).orElseThrow(() -> new RegistryException("cannot sign unknown model " + modelId));
        List<RegistrySignature> sigs = new ArrayList<>(signatures);
        sigs.add(new RegistrySignature(modelId, signer, key.verifyingKey(), key.sign(signedBytes(m))));
        return new Registry(models, sigs);
    }

    /**
     * Checks who vouched for a model: any signature that does not verify makes the entry {@code INVALID} (it was
     * modified after signing); otherwise a valid signature by a trusted key makes it {@code TRUSTED}.
     *
     * @param modelId the model
     * @param trusted trusted signer keys
     * @return the verdict
     */
    public SignatureCheck verify(String modelId, Set<VerifyingKey> trusted) {
        DeviceModel m = models.get(modelId);
        if (m == null) {
            return new SignatureCheck(SignatureCheck.Status.UNSIGNED, null, null);
        }
        byte[] msg = signedBytes(m);
        SignatureCheck best = new SignatureCheck(SignatureCheck.Status.UNSIGNED, null, null);
        for (RegistrySignature s : signatures) {
            if (!s.modelId().equals(modelId)) {
                continue;
            }
            if (!s.key().verify(msg, s.signature())) {
                return new SignatureCheck(SignatureCheck.Status.INVALID, s.signer(), s.key());
            }
            if (trusted.contains(s.key())) {
                best = new SignatureCheck(SignatureCheck.Status.TRUSTED, s.signer(), s.key());
            } else if (best.status() != SignatureCheck.Status.TRUSTED) {
                best = new SignatureCheck(SignatureCheck.Status.UNTRUSTED_SIGNER, s.signer(), s.key());
            }
        }
        return best;
    }

    /**
     * Returns the canonical form of a model entry: compact JSON with keys in a fixed order, as this library writes
     * it. Signatures and model digests are computed over it, so formatting changes do not break them while any
     * change of content does.
     *
     * @param model the model
     * @return canonical UTF-8 JSON
     */
    public static byte[] canonicalBytes(DeviceModel model) {
        return RegistryCodec.canonical(model);
    }

    /**
     * SHA-256 of the canonical form: the handshake compares it to detect two different definitions of one model.
     *
     * @param model the model
     * @return 32-byte digest
     */
    public static byte[] modelDigest(DeviceModel model) {
        return Crypto.sha256(canonicalBytes(model));
    }

    private static byte[] signedBytes(DeviceModel m) {
        return concat(SIGNATURE_LABEL, canonicalBytes(m));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** @return the registry as pretty-printed JSON */
    public byte[] toJson() {
        return RegistryCodec.encode(List.copyOf(models.values()), signatures, true);
    }
}
