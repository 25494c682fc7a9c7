package dev.outproc.vhost.frontend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.memory.GuestRegion;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.ConfigSpace;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.InflightDescription;
import dev.outproc.vhost.message.IotlbMsg;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.SingleMemRegion;
import dev.outproc.vhost.message.VringAddr;
import dev.outproc.vhost.message.VringDescriptorIndices;
import dev.outproc.vhost.message.VringState;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The front-end against a scripted back-end on a socket pair: every request is read back with the
 * message decoders and checked field by field, and replies are written with the encoders, so the
 * front-end's encoding and its reading of replies are tested without our back-end in the loop.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class VhostUserFrontendTest {
    private MessageChannel peer;
    private VhostUserMessageReader peerReader;
    private VhostUserMessageWriter peerWriter;
    private VhostUserFrontend fe;

    @BeforeEach
    void connect() throws IOException {
        MessageChannel.Pair pair = MessageChannel.pair();
        peer = pair.channel();
        peerReader = new VhostUserMessageReader(peer, MessageStream.FRONTEND_REQUESTS);
        peerWriter = new VhostUserMessageWriter(peer);
        fe = VhostUserFrontend.over(MessageChannel.adopt(pair.peerFd()));
        fe.setReplyTimeoutMillis(10_000);
    }

    @AfterEach
    void close() {
        fe.close();
        peer.close();
    }

    private VhostUserMessage expect(FrontendRequest request) throws IOException {
        VhostUserMessage m = peerReader.read();
        assertEquals(request, m.request());
        return m;
    }

    private void replyU64(FrontendRequest request, long value) throws IOException {
        peerWriter.sendReplyU64(request, value);
    }

    @Test
    void ringRequestsShouldCarryEveryFieldWhereTheSpecPutsIt() throws Exception {
        fe.setVringNum(3, 256);
        fe.setVringAddr(3, 0x7f00_0000_1000L, 0x7f00_0000_3000L, 0x7f00_0000_2000L, true, 0x4000_3000L);
        int packedBase = (int) VringDescriptorIndices.packed(5, true, 7, true); // bit 31 set: negative as an int
        fe.setVringBase(3, packedBase);
        fe.setVringEnable(3, true);
        try (VhostUserMessage m = expect(FrontendRequest.SET_VRING_NUM)) {
            VringState.Decoder d = new VringState.Decoder().wrap(m.payload(), 0);
            assertEquals(3, d.index());
            assertEquals(256, d.num());
        }
        try (VhostUserMessage m = expect(FrontendRequest.SET_VRING_ADDR)) {
            VringAddr.Decoder d = new VringAddr.Decoder().wrap(m.payload(), 0);
            assertEquals(3, d.index());
            assertEquals(VringAddr.F_LOG, d.flags());
            assertEquals(0x7f00_0000_1000L, d.descUserAddr());
            assertEquals(0x7f00_0000_3000L, d.usedUserAddr());
            assertEquals(0x7f00_0000_2000L, d.availUserAddr());
            assertEquals(0x4000_3000L, d.logGuestAddr());
        }
        try (VhostUserMessage m = expect(FrontendRequest.SET_VRING_BASE)) {
            long num = new VringState.Decoder().wrap(m.payload(), 0).num();
            assertEquals(Integer.toUnsignedLong(packedBase), num, "the packed word as an unsigned u32");
            assertEquals(7, VringDescriptorIndices.packedUsedIndex(num));
            assertTrue(VringDescriptorIndices.packedUsedWrap(num));
        }
        try (VhostUserMessage m = expect(FrontendRequest.SET_VRING_ENABLE)) {
            assertEquals(1, new VringState.Decoder().wrap(m.payload(), 0).num());
        }
    }

    @Test
    void getVringBaseShouldReadTheWholeUnsignedWord() throws Exception {
        long word = VringDescriptorIndices.packed(3, true, 9, true);
        new VringState.Encoder().wrap(peerWriter.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).index(1).num(word);
        peerWriter.sendReply(FrontendRequest.GET_VRING_BASE, VringState.ENCODED_LENGTH, List.of());
        assertEquals(word, fe.getVringBase(1));
        try (VhostUserMessage m = expect(FrontendRequest.GET_VRING_BASE)) {
            assertEquals(1, new VringState.Decoder().wrap(m.payload(), 0).index());
        }
    }

    @Test
    void memoryRequestsShouldDescribeEveryRegionAndPassItsFd() throws Exception {
        try (GuestRegion a = GuestRegion.allocate(0x4000_0000L, 1 << 20, 0x7f00_0000_0000L);
             GuestRegion b = GuestRegion.allocate(0x8000_0000L, 2 << 20, 0x7f10_0000_0000L)) {
            fe.setMemTable(GuestMemory.of(List.of(a, b)));
            try (VhostUserMessage m = expect(FrontendRequest.SET_MEM_TABLE)) {
                MemTable.Decoder table = new MemTable.Decoder().wrap(m.payload(), 0);
                assertEquals(2, table.nregions());
                assertEquals(2, m.fdCount(), "one fd per region");
                GuestRegion[] sent = {a, b};
                for (int i = 0; i < 2; i++) {
                    assertRegion(sent[i], table.region(i));
                    assertEquals(sent[i].sizeBytes(), MemFd.size(m.fds().all().get(i).get()), "region " + i + "'s fd");
                }
            }
            fe.addMemRegion(b);
            try (VhostUserMessage m = expect(FrontendRequest.ADD_MEM_REG)) {
                assertRegion(b, new SingleMemRegion.Decoder().wrap(m.payload(), 0).region());
                assertEquals(1, m.fdCount());
            }
            fe.removeMemRegion(b);
            try (VhostUserMessage m = expect(FrontendRequest.REM_MEM_REG)) {
                assertRegion(b, new SingleMemRegion.Decoder().wrap(m.payload(), 0).region());
            }
        }
    }

    private static void assertRegion(GuestRegion expected, MemoryRegion.Decoder region) {
        assertEquals(expected.guestPhysAddr(), region.guestPhysAddr());
        assertEquals(expected.sizeBytes(), region.memorySize());
        assertEquals(expected.userAddr(), region.userAddr());
        assertEquals(expected.mmapOffset(), region.mmapOffset());
    }

    @Test
    void aNonZeroAckShouldBecomeAFrontendExceptionWithTheStatus() throws Exception {
        fe.setProtocolFeatures(ProtocolFeature.REPLY_ACK.mask());
        expect(FrontendRequest.SET_PROTOCOL_FEATURES).close();
        replyU64(FrontendRequest.SET_VRING_NUM, 22);
        FrontendException e = assertThrows(FrontendException.class, () -> fe.setVringNum(0, 300));
        assertEquals(22, e.status());
        try (VhostUserMessage m = expect(FrontendRequest.SET_VRING_NUM)) {
            assertTrue(m.needReply(), "NEED_REPLY once REPLY_ACK is on");
        }
        replyU64(FrontendRequest.SET_VRING_NUM, 0);
        fe.setVringNum(0, 256); // status 0: accepted
        expect(FrontendRequest.SET_VRING_NUM).close();
    }

    @Test
    void configShouldBeAskedForExactlyAndAnEmptyAnswerRefused() throws Exception {
        byte[] bytes = {1, 2, 3, 4, 5, 6, 7, 8};
        new ConfigSpace.Encoder().wrap(peerWriter.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET)
                .access(4, bytes.length, ConfigSpace.FLAGS_WRITABLE).copyConfigFrom(java.lang.foreign.MemorySegment.ofArray(bytes), 0, bytes.length);
        peerWriter.sendReply(FrontendRequest.GET_CONFIG, ConfigSpace.encodedLength(bytes.length), List.of());
        assertArrayEquals(bytes, fe.getConfig(4, bytes.length));
        try (VhostUserMessage m = expect(FrontendRequest.GET_CONFIG)) {
            ConfigSpace.Decoder d = new ConfigSpace.Decoder().wrap(m.payload(), 0);
            assertEquals(4, d.configOffset());
            assertEquals(bytes.length, d.configSize());
        }
        // vhost-user.rst: a back-end that cannot serve the read answers with an empty payload.
        new ConfigSpace.Encoder().wrap(peerWriter.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET)
                .access(4, 0, ConfigSpace.FLAGS_WRITABLE);
        peerWriter.sendReply(FrontendRequest.GET_CONFIG, ConfigSpace.PAYLOAD_OFFSET, List.of());
        assertThrows(FrontendException.class, () -> fe.getConfig(4, bytes.length));
        expect(FrontendRequest.GET_CONFIG).close();

        fe.setConfig(2, bytes);
        try (VhostUserMessage m = expect(FrontendRequest.SET_CONFIG)) {
            ConfigSpace.Decoder d = new ConfigSpace.Decoder().wrap(m.payload(), 0);
            assertEquals(2, d.configOffset());
            assertArrayEquals(bytes, d.config().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void inflightAndIotlbRequestsShouldRoundTrip() throws Exception {
        try (OwnedFd log = MemFd.create("test-inflight", 8192)) {
            new InflightDescription.Encoder().wrap(peerWriter.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).clear()
                    .mmapSize(8192).mmapOffset(0).numQueues(2).queueSize(128);
            peerWriter.sendReply(FrontendRequest.GET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH, List.of(log));
            try (VhostUserFrontend.Inflight inflight = fe.getInflightFd(2, 128)) {
                assertEquals(8192, inflight.mmapSize());
                assertEquals(2, inflight.numQueues());
                assertEquals(128, inflight.queueSize());
                try (VhostUserMessage m = expect(FrontendRequest.GET_INFLIGHT_FD)) {
                    InflightDescription.Decoder d = new InflightDescription.Decoder().wrap(m.payload(), 0);
                    assertEquals(2, d.numQueues());
                    assertEquals(128, d.queueSize());
                }
                fe.setInflightFd(inflight);
                try (VhostUserMessage m = expect(FrontendRequest.SET_INFLIGHT_FD)) {
                    assertEquals(8192, new InflightDescription.Decoder().wrap(m.payload(), 0).mmapSize());
                    assertEquals(1, m.fdCount());
                }
            }
        }
        replyU64(FrontendRequest.IOTLB_MSG, 0);
        fe.iotlbUpdate(0x1000, 0x2000, 0x7f00_0000_0000L, IotlbMsg.PERM_RW);
        try (VhostUserMessage m = expect(FrontendRequest.IOTLB_MSG)) {
            IotlbMsg.Decoder d = new IotlbMsg.Decoder().wrap(m.payload(), 0);
            assertEquals(IotlbMsg.TYPE_UPDATE, d.type());
            assertEquals(0x1000, d.iova());
            assertEquals(0x2000, d.size());
            assertEquals(0x7f00_0000_0000L, d.userAddr());
            assertEquals(IotlbMsg.PERM_RW, d.perm());
        }
        replyU64(FrontendRequest.IOTLB_MSG, 0);
        fe.iotlbInvalidate(0x1000, 0x2000);
        try (VhostUserMessage m = expect(FrontendRequest.IOTLB_MSG)) {
            assertEquals(IotlbMsg.TYPE_INVALIDATE, new IotlbMsg.Decoder().wrap(m.payload(), 0).type());
        }
        assertFalse(fe.has(ProtocolFeature.REPLY_ACK));
    }
}
