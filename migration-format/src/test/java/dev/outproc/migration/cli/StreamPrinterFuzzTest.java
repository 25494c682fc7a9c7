package dev.outproc.migration.cli;

import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.MigrationStreamException;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.migration.testing.CounterState;
import dev.outproc.migration.testing.GoldenCorpus;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.channels.Channels;
import java.util.Set;

/**
 * Arbitrary bytes to the two readers the fuzzing of the stream walk does not reach: the inspecting printer
 * behind {@code outproc-migration inspect} (every header field, section, envelope and field formatted for a
 * human) and a reader opened without a handshake ({@code openUnattested}, the local snapshot restore). Only
 * {@link MigrationStreamException} may come out; the seeds are the golden streams.
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

    @FuzzTest(maxDuration = "30s")
    void restoreArbitrarySnapshot(byte[] data) {
        try (DeviceStateReader r = DeviceStateReader.openUnattested(Channels.newChannel(new ByteArrayInputStream(data)),
                CounterState.MODEL, CounterState.FORMAT, 1, 2)) {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                if (s.envelope()) {
                    r.skipSection();
                } else {
                    var f = r.fields();
                    while (f.next()) {
                        // the field walk of the stream target covers values; here only the framing matters
                    }
                }
            }
            r.finish();
        } catch (MigrationStreamException expected) {
            // a typed refusal
        } catch (IOException | RuntimeException e) {
            fail("unattested reader threw " + e.getClass().getName() + ": " + e.getMessage(), e);
        }
    }
}
