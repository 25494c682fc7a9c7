package dev.outproc.migration.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** registry-format.md rules a second implementation must reproduce: null, the integer text grammar, typed schemas and defaults. */
class RegistryRulesTest {
    private static Registry model(String parameters, String fields) throws RegistryException {
        String json = "{\"registryFormat\": 1, \"models\": [{\"id\": \"example.org/m\", \"revision\": 1, \"parameters\": [" + parameters
                + "], \"formatClasses\": [{\"id\": \"example.org/m/s\", \"versions\": [{\"version\": 1, \"sections\": [{\"id\": 1, \"name\": \"a\", \"version\": 1, \"fields\": ["
                + fields + "]}]}]}]}]}";
        return Registry.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void jsonNullShouldBeRefusedEvenForAnOptionalKey() {
        RegistryException e = assertThrows(RegistryException.class, () -> model("{\"name\": \"p\", \"type\": \"bool\", \"default\": null}", ""));
        assertTrue(e.getMessage().contains("null"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"+5\"", "\"007\"", "\"0X10\"", "\" 5\"", "\"5 \"", "\"1e3\"", "\"0x\"", "\"-0\"", "\"-1\"", "\"0x10000000000000000\""})
    void integerTextOutsideTheGrammarShouldBeRefused(String text) {
        assertThrows(RegistryException.class, () -> model("{\"name\": \"p\", \"type\": \"uint64\", \"default\": " + text + "}", ""), text);
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"0\"", "\"18446744073709551615\"", "\"0xFFffFFffFFffFFff\"", "42"})
    void integerTextInTheGrammarShouldBeAccepted(String text) throws RegistryException {
        model("{\"name\": \"p\", \"type\": \"uint64\", \"default\": " + text + "}", "");
    }

    @Test
    void pciIdsShouldFollowTheSameGrammar() {
        String bad = "{\"registryFormat\": 1, \"models\": [{\"id\": \"example.org/m\", \"revision\": 1, \"pciAliases\": [{\"vendor\": \"0X1af4\", \"device\": 1}]}]}";
        assertThrows(RegistryException.class, () -> Registry.parse(bad.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void fieldDefaultsShouldBeTypedAndArraysAndRecordsDescribed() throws RegistryException {
        Registry r = model("", "{\"tag\": 1, \"name\": \"b\", \"type\": \"bool\", \"default\": true},"
                + "{\"tag\": 2, \"name\": \"s\", \"type\": \"int16\", \"signed\": true, \"default\": -5},"
                + "{\"tag\": 3, \"name\": \"q\", \"type\": \"array\", \"element\": \"record\", \"fields\": [{\"tag\": 1, \"name\": \"i\", \"type\": \"int16\"}]}");
        SectionSchema a = r.model("example.org/m").orElseThrow().formatClasses().getFirst().version(1).orElseThrow().section(1).orElseThrow();
        assertEquals("true", a.fields().get(0).defaultValue());
        assertEquals("-5", a.fields().get(1).defaultValue());
        assertEquals("array<record{1:int16}>", a.fields().get(2).shape());
        assertThrows(RegistryException.class, () -> model("", "{\"tag\": 1, \"name\": \"b\", \"type\": \"bool\", \"default\": \"true\"}"), "a string for a bool");
        assertThrows(RegistryException.class, () -> model("", "{\"tag\": 1, \"name\": \"s\", \"type\": \"int8\", \"default\": 200, \"signed\": true}"), "out of range");
        assertThrows(RegistryException.class, () -> model("", "{\"tag\": 1, \"name\": \"q\", \"type\": \"array\"}"), "an array without element");
        assertThrows(RegistryException.class, () -> model("", "{\"tag\": 1, \"name\": \"q\", \"type\": \"record\"}"), "a record without fields");
        assertThrows(RegistryException.class, () -> model("", "{\"tag\": 1, \"name\": \"q\", \"type\": \"string\", \"signed\": true}"), "signed on a string");
        assertThrows(RegistryException.class, () -> model("", "{\"tag\": 1, \"name\": \"x\", \"type\": \"int8\"}, {\"tag\": 1, \"name\": \"y\", \"type\": \"int8\"}"), "a repeated tag");
    }

    private static final String CLASS = "{\"id\": \"example.org/m/s\", \"versions\": [{\"version\": 1, \"sections\": []}]}";
    private static final String CONSTRAINT = "{\"id\": \"c\", \"require\": {\"param\": \"p\", \"op\": \"eq\", \"value\": true}}";
    private static final String IMPLEMENTATION = "{\"id\": \"example.org/i\", \"formatClass\": \"example.org/m/s\", \"read\": [1], \"write\": [1]}";

    private static Registry lists(String constraints, String classes, String implementations) throws RegistryException {
        String json = "{\"registryFormat\": 1, \"models\": [{\"id\": \"example.org/m\", \"revision\": 1, "
                + "\"parameters\": [{\"name\": \"p\", \"type\": \"bool\", \"default\": true}], \"constraints\": [" + constraints
                + "], \"formatClasses\": [" + classes + "], \"implementations\": [" + implementations + "]}]}";
        return Registry.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void constraintFormatClassAndImplementationIdsShouldBeUniqueWithinTheModel() throws RegistryException {
        lists(CONSTRAINT, CLASS, IMPLEMENTATION);
        RegistryException c = assertThrows(RegistryException.class, () -> lists(CONSTRAINT + "," + CONSTRAINT, CLASS, IMPLEMENTATION));
        assertTrue(c.getMessage().contains("constraints[1]: constraint c appears twice"), c.getMessage());
        RegistryException f = assertThrows(RegistryException.class, () -> lists(CONSTRAINT, CLASS + "," + CLASS, IMPLEMENTATION));
        assertTrue(f.getMessage().contains("formatClasses[1]: format class example.org/m/s appears twice"), f.getMessage());
        RegistryException i = assertThrows(RegistryException.class,
                () -> lists(CONSTRAINT, CLASS, IMPLEMENTATION + "," + IMPLEMENTATION.replace("[1]}", "[1, 2]}")));
        assertTrue(i.getMessage().contains("implementations[1]: implementation example.org/i appears twice"), i.getMessage());
    }

    private static final String KINDS = "{\"name\": \"queue_size\", \"type\": \"uint16\", \"default\": 128},"
            + "{\"name\": \"seg_max\", \"type\": \"uint32\", \"default\": 126},"
            + "{\"name\": \"mode\", \"type\": \"string\", \"default\": \"fast\"},"
            + "{\"name\": \"alt\", \"type\": \"string\", \"default\": \"slow\"},"
            + "{\"name\": \"ro\", \"type\": \"bool\", \"default\": false},"
            + "{\"name\": \"wc\", \"type\": \"bool\", \"default\": true}";

    private static Registry constrained(String require) throws RegistryException {
        String json = "{\"registryFormat\": 1, \"models\": [{\"id\": \"example.org/m\", \"revision\": 1, \"parameters\": [" + KINDS
                + "], \"constraints\": [{\"id\": \"c1\", \"require\": " + require + "}]}]}";
        return Registry.parse(json.getBytes(StandardCharsets.UTF_8));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"param\": \"mode\", \"op\": \"le\", \"value\": \"fast\"}",
        "{\"param\": \"mode\", \"op\": \"ge\", \"otherParam\": \"alt\"}",
        "{\"param\": \"ro\", \"op\": \"ge\", \"value\": true}",
        "{\"param\": \"ro\", \"op\": \"bits_set\", \"otherParam\": \"wc\"}",
        "{\"param\": \"mode\", \"op\": \"bits_clear\", \"value\": \"x\"}"})
    void orderingAndBitOperatorsOnBoolOrStringParametersShouldBeRefused(String require) {
        RegistryException e = assertThrows(RegistryException.class, () -> constrained(require), require);
        String param = require.contains("\"mode\"") ? "mode" : "ro";
        assertTrue(e.getMessage().contains("model example.org/m") && e.getMessage().contains("constraint c1")
                && e.getMessage().contains("parameter " + param) && e.getMessage().contains("integer parameters only"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"param\": \"queue_size\", \"op\": \"ge\", \"otherParam\": \"mode\"}",
        "{\"param\": \"queue_size\", \"op\": \"eq\", \"otherParam\": \"ro\"}",
        "{\"param\": \"mode\", \"op\": \"ne\", \"otherParam\": \"ro\"}",
        "{\"param\": \"ro\", \"op\": \"eq\", \"otherParam\": \"seg_max\"}"})
    void comparingParametersOfDifferentKindsShouldBeRefused(String require) {
        RegistryException e = assertThrows(RegistryException.class, () -> constrained(require), require);
        assertTrue(e.getMessage().contains("model example.org/m") && e.getMessage().contains("constraint c1")
                && e.getMessage().contains("compares parameter") && e.getMessage().contains("both must be integers"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"param\": \"seg_max\", \"op\": \"le\", \"otherParam\": \"queue_size\"}",
        "{\"param\": \"queue_size\", \"op\": \"bits_clear\", \"value\": 1}",
        "{\"param\": \"mode\", \"op\": \"ne\", \"otherParam\": \"alt\"}",
        "{\"param\": \"ro\", \"op\": \"eq\", \"otherParam\": \"wc\"}",
        "{\"param\": \"mode\", \"op\": \"eq\", \"value\": \"fast\"}"})
    void comparableConditionsShouldStillBeAccepted(String require) throws RegistryException {
        assertEquals(1, constrained(require).model("example.org/m").orElseThrow().constraints().size(), require);
    }
}
