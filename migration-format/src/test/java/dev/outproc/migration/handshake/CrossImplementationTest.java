package dev.outproc.migration.handshake;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.model.Registry;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.StateDecoder;
import dev.outproc.migration.stream.StateEncoder;
import dev.outproc.migration.testing.BlkState;
import dev.outproc.migration.testing.FileBlkCodec;
import dev.outproc.migration.testing.MemoryBlkCodec;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.Pipe;
import java.security.SecureRandom;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Two independently written codecs of one format class (virtio-blk) migrate state to each other in both directions
 * after a handshake whose messages travel over a byte channel, as a front-end relaying between two back-ends would
 * carry them; an incompatible pair is refused before any state is written. (The same with two running vhost-user
 * back-ends and guest I/O across the switch belongs to the vhost-user integration.)
 */
class CrossImplementationTest {
    private static final SecureRandom RANDOM = new SecureRandom();

    /** Runs offer and answer through a pipe with the self-delimiting message framing. */
    private static HandshakeAgreement[] handshake(DeviceDescriptor source, DeviceDescriptor destination) throws IOException {
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(source, reg, true, RANDOM);
        MigrationSession.Destination dst = MigrationSession.destination(destination, new CompatibilityChecker(reg), true, RANDOM);
        Pipe relay = Pipe.open();
        HandshakeCodec.writeMessage(relay.sink(), src.offer());
        MigrationSession.Answer answer = dst.answer(HandshakeCodec.readMessage(relay.source()));
        HandshakeCodec.writeMessage(relay.sink(), answer.bytes());
        HandshakeAgreement sa = src.complete(HandshakeCodec.readMessage(relay.source()));
        return new HandshakeAgreement[] {sa, answer.agreement()};
    }

    private static BlkState migrate(HandshakeAgreement[] a, BlkState state, Function<BlkState, StateEncoder> saver,
            StateDecoder<BlkState> loader) throws IOException {
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        DeviceStateWriter.write(Channels.newChannel(wire), a[0], saver.apply(state));
        return DeviceStateReader.readVerified(Channels.newChannel(new ByteArrayInputStream(wire.toByteArray())), a[1], loader);
    }

    @Test
    void fileToMemoryAndBackAtVersion2() throws IOException {
        DeviceDescriptor file = CompatibilityCheckerTest.descriptor("blk-source.json");
        DeviceDescriptor memory = CompatibilityCheckerTest.descriptor("blk-dest-memory.json");
        HandshakeAgreement[] there = handshake(file, memory);
        assertEquals(2, there[0].formatVersion());
        BlkState atMemory = migrate(there, BlkState.sample(), s -> w -> FileBlkCodec.save(s, w), MemoryBlkCodec::load);
        assertEquals(BlkState.sample(), atMemory);
        HandshakeAgreement[] back = handshake(memory, file);
        BlkState atFile = migrate(back, atMemory, s -> w -> MemoryBlkCodec.save(s, w), FileBlkCodec::load);
        assertEquals(BlkState.sample(), atFile);
    }

    @Test
    void olderDestinationGetsADowngradedStreamFromEitherImplementation() throws IOException {
        DeviceDescriptor file = CompatibilityCheckerTest.descriptor("blk-source.json");
        DeviceDescriptor memoryV1 = CompatibilityCheckerTest.descriptor("blk-dest-v1-only.json");
        HandshakeAgreement[] a = handshake(file, memoryV1);
        assertEquals(1, a[0].formatVersion());
        assertEquals(BlkState.sample().asV1(), migrate(a, BlkState.sample(), s -> w -> FileBlkCodec.save(s, w), MemoryBlkCodec::load));
        assertEquals(BlkState.sample().asV1(), migrate(a, BlkState.sample(), s -> w -> MemoryBlkCodec.save(s, w), FileBlkCodec::load));
    }

    @Test
    void incompatiblePairIsRefusedBeforeAnyStateIsWritten() throws IOException {
        DeviceDescriptor file = CompatibilityCheckerTest.descriptor("blk-source.json");
        DeviceDescriptor other = CompatibilityCheckerTest.descriptor("blk-dest-incompatible.json");
        Registry reg = Registry.builtin();
        MigrationSession.Source src = MigrationSession.source(file, reg, true, RANDOM);
        MigrationSession.Answer answer = MigrationSession.destination(other, new CompatibilityChecker(reg), true, RANDOM).answer(src.offer());
        assertFalse(answer.accepted());
        MigrationRefusedException e = assertThrows(MigrationRefusedException.class, () -> src.complete(answer.bytes()));
        assertTrue(e.reasons().stream().anyMatch(r -> r.code() == ReasonCode.PARAMETER_NOT_ALLOWED));
        assertTrue(e.reasons().stream().anyMatch(r -> r.code() == ReasonCode.NO_COMMON_VERSION));
        // No agreement exists on either side, so no writer or reader can even be opened.
        assertEquals(null, answer.agreement());
    }

    @Test
    void readMessageShouldRefuseOversizeAndTruncatedFrames() throws IOException {
        byte[] header = {0x4F, 0x50, 0x4D, 0x48, 1, 1, 0, 0, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f};
        HandshakeException big = assertThrows(HandshakeException.class,
                () -> HandshakeCodec.readMessage(Channels.newChannel(new ByteArrayInputStream(header))));
        assertTrue(big.getMessage().contains("exceeds"), big.getMessage());
        byte[] offer = MigrationSession.source(CompatibilityCheckerTest.descriptor("blk-source.json"), Registry.empty(), false, RANDOM).offer();
        byte[] cut = java.util.Arrays.copyOf(offer, offer.length - 1);
        HandshakeException truncated = assertThrows(HandshakeException.class,
                () -> HandshakeCodec.readMessage(Channels.newChannel(new ByteArrayInputStream(cut))));
        assertTrue(truncated.getMessage().contains("ended inside"), truncated.getMessage());
    }
}
