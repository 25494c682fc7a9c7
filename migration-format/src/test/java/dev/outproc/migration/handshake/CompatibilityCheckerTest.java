package dev.outproc.migration.handshake;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.model.Registry;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Offline compatibility check of descriptors against the shipped models. */
class CompatibilityCheckerTest {
    static DeviceDescriptor descriptor(String name) throws IOException {
        try (InputStream in = CompatibilityCheckerTest.class.getResourceAsStream("/descriptors/" + name)) {
            return DeviceDescriptor.parse(in.readAllBytes());
        }
    }

    private static List<ReasonCode> codes(CompatibilityReport r) {
        return r.reasons().stream().map(Incompatibility::code).toList();
    }

    @Test
    void twoImplementationsOfOneFormatClassShouldBeCompatibleAtTheHighestVersion() throws IOException {
        CompatibilityReport r = new CompatibilityChecker(Registry.builtin()).check(descriptor("blk-source.json"), descriptor("blk-dest-memory.json"));
        assertEquals(List.of(), r.reasons());
        assertEquals(2, r.chosenVersion());
    }

    @Test
    void olderDestinationShouldGetADowngrade() throws IOException {
        CompatibilityReport r = new CompatibilityChecker(Registry.builtin()).check(descriptor("blk-source.json"), descriptor("blk-dest-v1-only.json"));
        assertEquals(List.of(), r.reasons());
        assertEquals(1, r.chosenVersion());
    }

    @Test
    void incompatibleDestinationShouldGetEveryReason() throws IOException {
        CompatibilityReport r = new CompatibilityChecker(Registry.builtin()).check(descriptor("blk-source.json"), descriptor("blk-dest-incompatible.json"));
        assertEquals(List.of(ReasonCode.PARAMETER_NOT_ALLOWED, ReasonCode.CONSTRAINT_VIOLATED, ReasonCode.PARAMETER_MISMATCH,
                ReasonCode.PARAMETER_MISMATCH, ReasonCode.UNKNOWN_FORMAT_VERSION, ReasonCode.NO_COMMON_VERSION), codes(r), r.reasons().toString());
        assertEquals(0, r.chosenVersion());
        Incompatibility ro = r.reasons().get(1);
        assertEquals("read-only-feature", ro.subject());
        assertTrue(ro.detail().contains("read_only=true") && ro.detail().contains("features=4294971972"), ro.detail());
    }

    @Test
    void aListedImplementationShouldNotClaimMoreThanItsRegistryEntry() throws IOException {
        DeviceDescriptor src = descriptor("blk-source.json");
        DeviceDescriptor d = descriptor("blk-dest-memory.json");
        DeviceDescriptor overclaiming = new DeviceDescriptor(d.modelId(), "outproc.dev/examples/memory-blk", d.formatClass(), d.parameters(),
                List.of(1, 2, 7), d.writeVersions());
        CompatibilityReport r = new CompatibilityChecker(Registry.builtin()).check(src, overclaiming);
        assertTrue(codes(r).contains(ReasonCode.IMPLEMENTATION_MISMATCH), r.reasons().toString());
        assertTrue(r.reasons().stream().anyMatch(i -> i.detail().contains("destination claims to read versions [7]")), r.reasons().toString());
        DeviceDescriptor unlisted = new DeviceDescriptor(d.modelId(), "example.com/unlisted-blk", d.formatClass(), d.parameters(),
                d.readVersions(), d.writeVersions());
        assertTrue(new CompatibilityChecker(Registry.builtin()).check(src, unlisted).compatible(), "an unlisted implementation is no reason");
    }

    @Test
    void differentModelShouldBeRefused() throws IOException {
        CompatibilityReport r = new CompatibilityChecker(Registry.builtin()).check(descriptor("blk-source.json"), descriptor("counter-dest-v1.json"));
        assertEquals(ReasonCode.MODEL_MISMATCH, r.reasons().getFirst().code());
        assertTrue(codes(r).contains(ReasonCode.FORMAT_CLASS_MISMATCH), r.reasons().toString());
    }

    @Test
    void unknownModelTypeErrorsAndMissingRequiredParameterShouldBeReasons() throws IOException {
        Registry reg = Registry.builtin();
        DeviceDescriptor unknown = new DeviceDescriptor("example.com/nope", "", "example.com/nope/state", Map.of(), List.of(1), List.of(1));
        assertEquals(List.of(ReasonCode.UNKNOWN_MODEL), codes(new CompatibilityChecker(reg).check(unknown, unknown)));

        DeviceDescriptor src = descriptor("blk-source.json");
        DeviceDescriptor bad = new DeviceDescriptor(src.modelId(), "x", src.formatClass(),
                Map.of("blk_size", "big", "colour", "red"), List.of(1, 2), List.of(1, 2));
        List<ReasonCode> c = codes(new CompatibilityChecker(reg).check(src, bad));
        assertTrue(c.contains(ReasonCode.PARAMETER_TYPE) && c.contains(ReasonCode.UNKNOWN_PARAMETER) && c.contains(ReasonCode.PARAMETER_MISSING), c.toString());
    }

    @Test
    void signatureRulesShouldApply() throws IOException {
        SigningKey vendor = SigningKey.fromSeed(new byte[32]);
        Registry signed = Registry.builtin().sign("virtio-spec.org/pci/virtio-blk", "outproc.dev", vendor);
        DeviceDescriptor s = descriptor("blk-source.json");
        DeviceDescriptor d = descriptor("blk-dest-memory.json");
        assertEquals(List.of(), new CompatibilityChecker(signed, Set.of(vendor.verifyingKey()), true).check(s, d).reasons());
        assertEquals(List.of(ReasonCode.UNTRUSTED_MODEL), codes(new CompatibilityChecker(Registry.builtin(), Set.of(vendor.verifyingKey()), true).check(s, d)));
    }

    @Test
    void differentModelDefinitionShouldBeRefused() throws IOException {
        Registry reg = Registry.builtin();
        byte[] otherDigest = Registry.modelDigest(reg.model("outproc.dev/example/counter").orElseThrow());
        CompatibilityReport r = new CompatibilityChecker(reg).check(descriptor("blk-source.json"), descriptor("blk-dest-memory.json"), otherDigest);
        assertEquals(List.of(ReasonCode.MODEL_DEFINITION_MISMATCH), codes(r));
    }
}
