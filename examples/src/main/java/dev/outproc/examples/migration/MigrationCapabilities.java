package dev.outproc.examples.migration;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.outproc.migration.handshake.DeviceDescriptor;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;

/**
 * {@code --print-capabilities} JSON of a back-end that takes part in migration (integration.md §7): the vhost-user
 * conventions' {@code type} and {@code features}, plus a {@code "migration"} member holding the device's descriptor
 * (registry-format.md §7) so that an orchestrator can run {@code migration check} before it starts anything.
 */
public final class MigrationCapabilities {
    private MigrationCapabilities() {}

    /**
     * Prints the capabilities.
     *
     * @param out where to print
     * @param type the conventions' device type, e.g. {@code block}
     * @param features the conventions' feature names
     * @param descriptor the device's descriptor; its parameters may be empty when the device is not configured yet
     */
    public static void print(PrintStream out, String type, List<String> features, DeviceDescriptor descriptor) {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            g.writeStringField("type", type);
            g.writeArrayFieldStart("features");
            for (String f : features) {
                g.writeString(f);
            }
            g.writeEndArray();
            g.writeObjectFieldStart("migration");
            g.writeStringField("model", descriptor.modelId());
            g.writeStringField("implementation", descriptor.implementationId());
            g.writeStringField("formatClass", descriptor.formatClass());
            g.writeObjectFieldStart("parameters");
            for (Map.Entry<String, String> p : descriptor.parameters().entrySet()) {
                g.writeStringField(p.getKey(), p.getValue());
            }
            g.writeEndObject();
            g.writeArrayFieldStart("read");
            for (int v : descriptor.readVersions()) {
                g.writeNumber(v);
            }
            g.writeEndArray();
            g.writeArrayFieldStart("write");
            for (int v : descriptor.writeVersions()) {
                g.writeNumber(v);
            }
            g.writeEndArray();
            g.writeEndObject();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.println(w);
    }
}
