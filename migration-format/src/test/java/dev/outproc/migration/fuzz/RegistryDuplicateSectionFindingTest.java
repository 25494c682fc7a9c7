package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.RegistryException;
import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

/**
 * A finding of the {@link RegistryParserFuzzTest} campaign, kept with its input: the counter registry of the
 * corpus with one byte changed, so that the model has two sections with id 1 ("memory" took the id of the first
 * section). {@code Registry.parse} accepted it, and the parsed model then differed from the model re-parsed from
 * its own JSON. A model whose section ids repeat is ambiguous on the wire (a stream section names its schema by
 * id): the parser refuses it.
 */
class RegistryDuplicateSectionFindingTest {

    @Test
    void aModelWithTwoSectionsOfTheSameIdShouldBeRefused() throws IOException {
        byte[] json;
        try (InputStream in = RegistryDuplicateSectionFindingTest.class.getResourceAsStream("/findings/registry-duplicate-section-id.json")) {
            json = in.readAllBytes();
        }
        assertThrows(RegistryException.class, () -> Registry.parse(json));
    }
}
