package dev.outproc.migration.handshake;

import dev.outproc.migration.internal.JsonTree;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What one side of a migration is: model, implementation, format class, parameter values (as text, typed against the
 * model by the checker) and the format versions it can read and write. Management software keeps one per device
 * and per host; {@link CompatibilityChecker} compares two of them.
 *
 * <p>JSON form ({@code migration check} reads it):
 * <pre>{@code
 * {"model": "virtio-spec.org/pci/virtio-blk", "implementation": "outproc.dev/examples/file-blk",
 *  "formatClass": "virtio-spec.org/pci/virtio-blk/state",
 *  "parameters": {"capacity": 2097152, "blk_size": 512, "read_only": false},
 *  "read": [1, 2], "write": [1, 2]}
 * }</pre>
 *
 * @param modelId device model id
 * @param implementationId implementation id
 * @param formatClass state-format class id
 * @param parameters parameter values as text
 * @param readVersions format versions this side reads
 * @param writeVersions format versions this side writes
 */
public record DeviceDescriptor(String modelId, String implementationId, String formatClass, Map<String, String> parameters,
        List<Integer> readVersions, List<Integer> writeVersions) {

    /** Most parameters a descriptor may carry. */
    public static final int MAX_PARAMETERS = 256;
    /** Most versions a descriptor may list. */
    public static final int MAX_VERSIONS = 256;

    /** Canonical constructor: copies the collections, keeping parameter order. */
    public DeviceDescriptor {
        parameters = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
        readVersions = List.copyOf(readVersions);
        writeVersions = List.copyOf(writeVersions);
    }

    /**
     * Parses the JSON form.
     *
     * @param json UTF-8 JSON
     * @return the descriptor
     * @throws HandshakeException if the JSON is malformed or incomplete
     */
    public static DeviceDescriptor parse(byte[] json) throws HandshakeException {
        Object root;
        try {
            root = JsonTree.parse(json);
        } catch (JsonTree.JsonException e) {
            throw new HandshakeException("descriptor: " + e.getMessage(), e);
        }
        if (!(root instanceof Map<?, ?> m)) {
            throw new HandshakeException("descriptor must be a JSON object");
        }
        for (Object k : m.keySet()) {
            if (!Set.of("model", "implementation", "formatClass", "parameters", "read", "write").contains(k)) {
                throw new HandshakeException("descriptor: unknown key '" + k + "'");
            }
        }
        Map<String, String> params = new LinkedHashMap<>();
        if (m.get("parameters") instanceof Map<?, ?> pm) {
            for (Map.Entry<?, ?> e : pm.entrySet()) {
                Object v = e.getValue();
                String text = v instanceof String s ? s : v instanceof Boolean b ? b.toString()
                        : v instanceof JsonTree.Num n && n.integral() ? n.text() : null;
                if (text == null) {
                    throw new HandshakeException("descriptor: parameter " + e.getKey() + " must be a string, boolean or integer");
                }
                params.put((String) e.getKey(), text);
            }
        } else if (m.get("parameters") != null) {
            throw new HandshakeException("descriptor: parameters must be an object");
        }
        if (params.size() > MAX_PARAMETERS) {
            throw new HandshakeException("descriptor has " + params.size() + " parameters, more than " + MAX_PARAMETERS);
        }
        return new DeviceDescriptor(text(m.get("model"), "model"), m.get("implementation") == null ? "" : text(m.get("implementation"), "implementation"),
                text(m.get("formatClass"), "formatClass"), params, versions(m.get("read"), "read"), versions(m.get("write"), "write"));
    }

    /**
     * Loads the JSON form from a file.
     *
     * @param file path
     * @return the descriptor
     * @throws IOException if the file cannot be read or parsed
     */
    public static DeviceDescriptor load(Path file) throws IOException {
        if (Files.size(file) > JsonTree.MAX_DOCUMENT_BYTES) {
            throw new HandshakeException("descriptor file " + file + " is too large");
        }
        try {
            return parse(Files.readAllBytes(file));
        } catch (HandshakeException e) {
            throw new HandshakeException(file + ": " + e.getMessage(), e);
        }
    }

    private static String text(Object o, String key) throws HandshakeException {
        if (o instanceof String s) {
            return s;
        }
        throw new HandshakeException("descriptor: " + key + " must be a string");
    }

    private static List<Integer> versions(Object o, String key) throws HandshakeException {
        if (o == null) {
            return List.of();
        }
        if (!(o instanceof List<?> l) || l.size() > MAX_VERSIONS) {
            throw new HandshakeException("descriptor: " + key + " must be an array of at most " + MAX_VERSIONS + " versions");
        }
        List<Integer> v = new ArrayList<>();
        for (Object x : l) {
            if (!(x instanceof JsonTree.Num n) || !n.integral()) {
                throw new HandshakeException("descriptor: " + key + " must hold integers");
            }
            try {
                int i = Integer.parseInt(n.text());
                if (i < 1) {
                    throw new NumberFormatException();
                }
                v.add(i);
            } catch (NumberFormatException e) {
                throw new HandshakeException("descriptor: " + key + " version " + n.text() + " is not in 1..2^31-1");
            }
        }
        return v;
    }
}
