package dev.outproc.migration.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.integrity.SigningKey;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Shipped models, parsing strictness, merge rules and signed entries. */
class RegistryTest {
    private static final String BLK = "virtio-spec.org/pci/virtio-blk";
    private static final SigningKey OUTPROC = SigningKey.fromSeed(seed(1));
    private static final SigningKey STRANGER = SigningKey.fromSeed(seed(2));

    private static byte[] seed(int b) {
        byte[] s = new byte[32];
        Arrays.fill(s, (byte) b);
        return s;
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = RegistryTest.class.getResourceAsStream(name)) {
            return in.readAllBytes();
        }
    }

    @Test
    void builtinShouldShipVirtioBlkWithPciAliasesAndParameters() throws IOException {
        Registry r = Registry.builtin();
        DeviceModel blk = r.model(BLK).orElseThrow();
        assertEquals(1, r.findByPci(0x1af4, 0x1042, -1, -1, -1).size());
        assertEquals(BLK, r.findByPci(0x1af4, 0x1042, 0x1af4, 0x1100, 1).getFirst().id());
        assertEquals(BLK, r.findByPci(0x1af4, 0x1001, 0x1af4, 0x0002, -1).getFirst().id());
        assertTrue(r.findByPci(0x1af4, 0x1001, 0x1af4, 0x0003, -1).isEmpty(), "subsystem id must match when the alias names one");
        for (String p : new String[] {"capacity", "blk_size", "num_queues", "read_only", "seg_max", "features"}) {
            assertTrue(blk.parameter(p).isPresent(), p);
        }
        assertEquals(3, blk.implementations().size()); // file-blk, memory-blk and vfio-user-virtio-blk
        assertTrue(blk.implementations().stream().allMatch(i -> i.formatClass().equals(BLK + "/state")),
                "every implementation shares one format class");
        assertTrue(r.model("outproc.dev/example/counter").isPresent());
    }

    @Test
    void shippedVirtioBlkDefaultsShouldSatisfyItsOwnConstraints() throws IOException {
        DeviceModel blk = Registry.builtin().model(BLK).orElseThrow();
        Map<String, ParameterValue> v = blk.withDefaults(Map.of("capacity", ParameterValue.ofUnsigned(8)));
        for (Constraint c : blk.constraints()) {
            assertTrue(c.satisfied(v), c.toString());
        }
        Map<String, ParameterValue> ro = blk.withDefaults(Map.of("capacity", ParameterValue.ofUnsigned(8), "read_only", new ParameterValue.Bool(true)));
        assertFalse(blk.constraints().stream().allMatch(c -> c.satisfied(ro)), "read_only without VIRTIO_BLK_F_RO must violate a constraint");
    }

    @Test
    void canonicalFormShouldSurviveReformattingAndRoundTrip() throws IOException {
        Registry r = Registry.builtin();
        Registry again = Registry.parse(r.toJson());
        for (DeviceModel m : r.models()) {
            assertArrayEquals(Registry.canonicalBytes(m), Registry.canonicalBytes(again.model(m.id()).orElseThrow()), m.id());
        }
    }

    @Test
    void signedEntryShouldVerifyAndAModifiedOneBeRejected() throws IOException {
        Registry signed = Registry.builtin().sign(BLK, "outproc.dev", OUTPROC);
        assertEquals(SignatureCheck.Status.TRUSTED, signed.verify(BLK, Set.of(OUTPROC.verifyingKey())).status());
        assertEquals(SignatureCheck.Status.UNTRUSTED_SIGNER, signed.verify(BLK, Set.of(STRANGER.verifyingKey())).status());
        assertEquals(SignatureCheck.Status.UNSIGNED, signed.verify("outproc.dev/example/counter", Set.of(OUTPROC.verifyingKey())).status());

        // The signature travels in the file; someone edits the signed entry (allows blk_size 8192).
        String json = new String(signed.toJson(), StandardCharsets.UTF_8);
        String tampered = json.replace("\"allowed\" : [ \"512\", \"1024\", \"2048\", \"4096\" ]", "\"allowed\" : [ \"512\", \"1024\", \"2048\", \"4096\", \"8192\" ]");
        assertTrue(!tampered.equals(json), "the edit must apply");
        Registry edited = Registry.parse(tampered.getBytes(StandardCharsets.UTF_8));
        SignatureCheck c = edited.verify(BLK, Set.of(OUTPROC.verifyingKey()));
        assertEquals(SignatureCheck.Status.INVALID, c.status());
        assertEquals("outproc.dev", c.signer());

        // Whitespace does not matter: the signature covers the canonical form.
        Registry reformatted = Registry.parse(json.replace("\n", " ").getBytes(StandardCharsets.UTF_8));
        assertEquals(SignatureCheck.Status.TRUSTED, reformatted.verify(BLK, Set.of(OUTPROC.verifyingKey())).status());
    }

    @Test
    void mergeShouldTakeHigherRevisionAndRefuseConflicts() throws IOException {
        Registry r1 = Registry.parse(resource("/registry/counter-r1.json"));
        Registry r2 = Registry.parse(resource("/registry/counter-r2.json"));
        assertEquals(2, r1.merge(r2).model("outproc.dev/example/counter").orElseThrow().revision());
        assertEquals(2, r2.merge(r1).model("outproc.dev/example/counter").orElseThrow().revision());
        String conflicting = new String(resource("/registry/counter-r1.json"), StandardCharsets.UTF_8).replace("\"safe\"", "\"careful\"");
        RegistryException e = assertThrows(RegistryException.class, () -> r1.merge(Registry.parse(conflicting.getBytes(StandardCharsets.UTF_8))));
        assertTrue(e.getMessage().contains("revision 1 differs"), e.getMessage());
    }

    @Test
    void mergeShouldKeepSignaturesOnlyForTheEntryTheyCover() throws IOException {
        Registry r1 = Registry.parse(resource("/registry/counter-r1.json")).sign("outproc.dev/example/counter", "outproc.dev", OUTPROC);
        Registry r2 = Registry.parse(resource("/registry/counter-r2.json"));
        Registry merged = r1.merge(r2);
        assertEquals(SignatureCheck.Status.UNSIGNED, merged.verify("outproc.dev/example/counter", Set.of(OUTPROC.verifyingKey())).status(),
                "the r1 signature must not vouch for r2");
    }

    @Test
    void parserShouldRejectUnknownKeysDuplicatesAndBadValues() {
        String[] bad = {
            "{\"registryFormat\":1,\"models\":[],\"extra\":1}",
            "{\"registryFormat\":1,\"registryFormat\":1,\"models\":[]}",
            "{\"registryFormat\":2,\"models\":[]}",
            "{\"registryFormat\":1,\"models\":[{\"id\":\"not a domain\",\"revision\":1}]}",
            "{\"registryFormat\":1,\"models\":[{\"id\":\"a.b/c\",\"revision\":1,\"parameters\":[{\"name\":\"x\",\"type\":\"uint8\",\"default\":300}]}]}",
            "{\"registryFormat\":1,\"models\":[{\"id\":\"a.b/c\",\"revision\":1,\"parameters\":[{\"name\":\"x\",\"type\":\"uint8\",\"default\":1,\"allowed\":[2]}]}]}",
            "{\"registryFormat\":1,\"models\":[{\"id\":\"a.b/c\",\"revision\":1,\"constraints\":[{\"id\":\"k\",\"require\":{\"param\":\"nope\",\"op\":\"eq\",\"value\":1}}]}]}",
            "{\"registryFormat\":1,\"models\":[{\"id\":\"a.b/c\",\"revision\":1},{\"id\":\"a.b/c\",\"revision\":2}]}",
            "{\"registryFormat\":1,\"models\":[]} trailing",
            "[" .repeat(100) + "]".repeat(100),
        };
        for (String s : bad) {
            assertThrows(RegistryException.class, () -> Registry.parse(s.getBytes(StandardCharsets.UTF_8)), s);
        }
    }
}
