package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.model.DeviceModel;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.RegistryException;
import dev.outproc.migration.model.SchemaDiff;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A finding of the {@link RegistryParserFuzzTest} campaign, kept with its input: the counter registry of the corpus
 * with its implementation listed twice under one id ({@code outproc.dev/example/counter-v2}, reading and writing
 * {@code [1]} in the first entry and {@code [1, 2]} in the second). {@code Registry.parse} accepted it; every lookup
 * by implementation id (the handshake's version checks, the signers bound to the implementation, the schema diff)
 * takes the first entry, so the second was silently ignored and the model differed from its own re-parsed JSON in a
 * diff. registry-format.md §3.6 now says an implementation id is unique within the model (§3.2 and §3.3 say the same
 * of constraint and format class ids), and the parser refuses a repeated one.
 *
 * <p>The input predates the rule that an array field names its element type (§3.3), which refuses it before the
 * implementations are read; the test therefore also gives its two array fields an element, so that the input
 * reaches the check it was found for.
 */
class RegistryRoundTripFindingTest {

    private static String input() throws IOException {
        try (InputStream in = RegistryRoundTripFindingTest.class.getResourceAsStream("/findings/registry-roundtrip-differs.json")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The input with its array fields given an element type, as the current format requires. */
    private static String withArrayElements(String json) {
        String typed = json.replace("\"type\": \"array\" }", "\"type\": \"array\", \"element\": \"int64\" }");
        assertEquals(2, typed.split("\"element\"", -1).length - 1, "both array fields of the input get an element");
        return typed;
    }

    @Test
    void theInputAsFoundShouldBeRefused() throws IOException {
        byte[] json = input().getBytes(StandardCharsets.UTF_8);
        assertThrows(RegistryException.class, () -> Registry.parse(json));
    }

    @Test
    void aModelWithTwoImplementationsOfTheSameIdShouldBeRefused() throws IOException {
        byte[] json = withArrayElements(input()).getBytes(StandardCharsets.UTF_8);
        RegistryException e = assertThrows(RegistryException.class, () -> Registry.parse(json));
        assertTrue(e.getMessage().contains("implementations[1]: implementation outproc.dev/example/counter-v2 appears twice"), e.getMessage());
    }

    @Test
    void theSameModelWithOneImplementationEntryShouldSurviveItsOwnJson() throws IOException, RegistryException {
        String json = withArrayElements(input());
        int first = json.indexOf("{ \"id\": \"outproc.dev/example/counter-v2\"");
        int second = json.indexOf("{ \"id\": \"outproc.dev/example/counter-v2\"", first + 1);
        String single = json.substring(0, first) + json.substring(second);
        Registry r = Registry.parse(single.getBytes(StandardCharsets.UTF_8));
        Registry again = Registry.parse(r.toJson());
        for (DeviceModel m : r.models()) {
            assertEquals(List.of(), SchemaDiff.diff(m, again.model(m.id()).orElseThrow()), m.id());
            assertEquals(List.of(1, 2), m.implementation("outproc.dev/example/counter-v2").orElseThrow().readVersions());
        }
    }
}
