package dev.outproc.migration.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeException;
import dev.outproc.migration.model.Registry;
import dev.outproc.migration.model.RegistryException;
import dev.outproc.migration.model.SchemaDiff;
import java.util.Set;

/**
 * Arbitrary bytes to the registry JSON parser and the descriptor parser: only {@link RegistryException} and
 * {@link HandshakeException} may come out. Whatever parses must survive canonicalization, re-parsing, signature
 * verification and a diff against itself.
 */
class RegistryParserFuzzTest {

    @FuzzTest(maxDuration = "30s")
    void parseArbitraryRegistry(byte[] data) {
        Registry r;
        try {
            r = Registry.parse(data);
        } catch (RegistryException expected) {
            return;
        } catch (RuntimeException e) {
            fail("registry parser threw " + e.getClass().getName() + ": " + e.getMessage(), e);
            return;
        }
        try {
            Registry again = Registry.parse(r.toJson());
            r.models().forEach(m -> {
                r.verify(m.id(), Set.of());
                if (!SchemaDiff.diff(m, again.model(m.id()).orElseThrow()).isEmpty()) {
                    fail("a parsed model differs from its own re-parsed JSON: " + m.id());
                }
            });
        } catch (RegistryException | RuntimeException e) {
            fail("a parsed registry did not survive its own JSON: " + e, e);
        }
    }

    @FuzzTest(maxDuration = "30s")
    void parseArbitraryDescriptor(byte[] data) {
        try {
            DeviceDescriptor.parse(data);
        } catch (HandshakeException expected) {
            // a typed refusal
        } catch (RuntimeException e) {
            fail("descriptor parser threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
    }
}
