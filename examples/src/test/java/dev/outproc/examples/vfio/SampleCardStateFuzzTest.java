package dev.outproc.examples.vfio;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Fuzz target for the sample card's state decoder: the bytes a destination gets through MIG_DATA_WRITE come from
 * another process. Whatever they are, {@link SampleCardState#read} returns a state of exactly the card's BAR2 size
 * or throws an {@link IOException}; nothing else escapes. The corpus starts from a valid stream saved through
 * PRE_COPY (memory, memory_changes, registers).
 */
class SampleCardStateFuzzTest {
    @FuzzTest(maxDuration = "30s")
    void readArbitraryStreams(byte[] data) {
        try {
            SampleCardState s = SampleCardState.read(Channels.newChannel(new ByteArrayInputStream(data)), null, SampleCard.BAR2_SIZE);
            assertEquals(SampleCard.BAR2_SIZE, s.bar2().length);
        } catch (IOException refused) {
            // malformed, truncated, tampered or another device's: refused
        }
    }

    @Test
    void theCorpusSeedIsAValidStream() throws IOException {
        try (InputStream in = SampleCardStateFuzzTest.class.getResourceAsStream(
                "SampleCardStateFuzzTestInputs/readArbitraryStreams/valid-pre-copy-stream")) {
            assertNotNull(in);
            SampleCardState s = SampleCardState.read(Channels.newChannel(in), null, SampleCard.BAR2_SIZE);
            assertEquals(0x5EED, s.scratch());
            assertEquals(0x100000, s.dmaAddr());
            assertEquals((byte) 0x42, s.bar2()[4096 + 1], "the page change applied over the memory section");
            assertEquals((byte) (2 * 7), s.bar2()[2]);
        }
    }
}
