package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.RegistryException;
import dev.outproc.migration.model.SchemaDiff;
import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;

/**
 * An open finding of the {@link RegistryParserFuzzTest} campaign, kept with its input (a mutation of the counter
 * registry of the corpus, not yet analysed): {@code Registry.parse} accepts it, but the model differs from the
 * model re-parsed from the registry's own JSON, so what a registry says depends on how often it was written out.
 */
class RegistryRoundTripFindingTest {

    @Test
    @Disabled("finding: a parsed registry model differs from its own re-parsed JSON; input findings/registry-roundtrip-differs.json")
    void aParsedRegistryShouldSurviveItsOwnJson() throws IOException {
        byte[] json;
        try (InputStream in = RegistryRoundTripFindingTest.class.getResourceAsStream("/findings/registry-roundtrip-differs.json")) {
            json = in.readAllBytes();
        }
        Registry r;
        try {
            r = Registry.parse(json);
        } catch (RegistryException refused) {
            return; // refusing the input is a fix too
        }
        Registry again = Registry.parse(r.toJson());
        r.models().forEach(m -> assertTrue(SchemaDiff.diff(m, again.model(m.id()).orElseThrow()).isEmpty(), m.id()));
    }
}
