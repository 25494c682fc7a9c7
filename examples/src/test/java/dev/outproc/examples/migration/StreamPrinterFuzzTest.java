package dev.outproc.examples.migration;

import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.MigrationStreamException;
import dev.outproc.migration.testing.GoldenCorpus;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.channels.Channels;
import java.util.Set;

/**
 * Arbitrary bytes to the inspecting printer behind {@code migration inspect}: every header field, section, envelope
 * and field of a stream of any format class, formatted for a human, through the reader the command opens (the MAC key
 * of the golden corpus, no pinned signer). Only {@link MigrationStreamException} may come out; the seeds are the
 * golden streams of migration-format.
 */
class StreamPrinterFuzzTest {

    @FuzzTest(maxDuration = "30s")
    void inspectArbitraryStream(byte[] data) {
        StringWriter text = new StringWriter();
        try (DeviceStateReader r = DeviceStateReader.openForInspection(Channels.newChannel(new ByteArrayInputStream(data)),
                GoldenCorpus.MAC_KEY, Set.of())) {
            new StreamPrinter(new PrintWriter(text), true).walk(r);
        } catch (MigrationStreamException expected) {
            // a typed refusal
        } catch (IOException | RuntimeException e) {
            fail("inspect threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
    }
}
