package dev.outproc.migration.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Schema diff between versions of the example model. */
class SchemaDiffTest {
    private static DeviceModel counter(String file) throws IOException {
        return Registry.parse(RegistryTest.resource("/registry/" + file)).model("outproc.dev/example/counter").orElseThrow();
    }

    private static Set<String> codes(List<SchemaChange> changes, SchemaChange.Severity s) {
        return changes.stream().filter(c -> c.severity() == s).map(SchemaChange::code).collect(Collectors.toSet());
    }

    @Test
    void addingFormatVersion2ShouldBeCompatible() throws IOException {
        List<SchemaChange> changes = SchemaDiff.diff(counter("counter-r1.json"), counter("counter-r2.json"));
        assertEquals(Set.of(), codes(changes, SchemaChange.Severity.BREAKING), changes.toString());
        assertTrue(codes(changes, SchemaChange.Severity.COMPATIBLE).contains("FORMAT_VERSION_ADDED"), changes.toString());
    }

    @Test
    void carelessEditShouldBeFlaggedAsBreaking() throws IOException {
        List<SchemaChange> changes = SchemaDiff.diff(counter("counter-r2.json"), counter("counter-r3-breaking.json"));
        assertEquals(Set.of("ALLOWED_VALUES_NARROWED", "RANGE_TIGHTENED", "REQUIRED_PARAMETER_ADDED", "FIELD_TYPE_CHANGED",
                "FORMAT_VERSION_REMOVED", "READ_VERSION_DROPPED", "WRITE_VERSION_DROPPED"),
                codes(changes, SchemaChange.Severity.BREAKING), changes.toString());
        assertEquals(SchemaChange.Severity.BREAKING, changes.getFirst().severity(), "breaking changes come first");
    }

    @Test
    void identicalModelsShouldHaveNoChanges() throws IOException {
        assertEquals(List.of(), SchemaDiff.diff(counter("counter-r2.json"), counter("counter-r2.json")));
    }

    @Test
    void unchangedRevisionWithChangedContentShouldBeBreaking() throws IOException {
        DeviceModel a = counter("counter-r2.json");
        DeviceModel b = new DeviceModel(a.id(), a.revision(), "changed description", a.pciAliases(), a.parameters(), a.constraints(),
                a.formatClasses(), a.implementations());
        assertEquals(Set.of("REVISION_NOT_INCREASED"), codes(SchemaDiff.diff(a, b), SchemaChange.Severity.BREAKING));
    }

    @Test
    void sectionVersionReusedWithIncompatibleFieldsShouldBeBreaking() throws IOException {
        DeviceModel a = counter("counter-r2.json");
        FormatClass fc = a.formatClasses().getFirst();
        FormatVersion v2 = fc.version(2).orElseThrow();
        SectionSchema config = v2.sections().getFirst();
        // Format version 2 gives section 1 version 1 a field without default that version 1 lacks.
        SectionSchema bad = new SectionSchema(config.id(), config.name(), config.version(), true, false,
                List.of(config.fields().get(0), config.fields().get(1), config.fields().get(2), new FieldSchema(5, "extra", "int32", null)));
        List<SectionSchema> sections = new java.util.ArrayList<>(v2.sections());
        sections.set(0, bad);
        FormatClass changed = new FormatClass(fc.id(), fc.description(), List.of(fc.version(1).orElseThrow(), new FormatVersion(2, sections)));
        DeviceModel b = new DeviceModel(a.id(), a.revision() + 1, a.description(), a.pciAliases(), a.parameters(), a.constraints(),
                List.of(changed), a.implementations());
        assertTrue(codes(SchemaDiff.diff(a, b), SchemaChange.Severity.BREAKING).contains("SECTION_CHANGED_WITHOUT_VERSION"));
    }
}
