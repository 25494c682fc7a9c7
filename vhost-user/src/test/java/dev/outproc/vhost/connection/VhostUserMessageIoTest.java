package dev.outproc.vhost.connection;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.MemFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.InflightDescription;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VhostUserProtocolException.Reason;
import dev.outproc.vhost.message.VringFdIndex;
import dev.outproc.vhost.message.VringState;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Messages over a real Unix socket pair: fds travel with their message, are owned by the receiving
 * message until taken, and are closed on every error path; the fd count of the process returns to its
 * baseline after each test.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class VhostUserMessageIoTest {
    private MessageChannel frontend;
    private MessageChannel backend;
    private VhostUserMessageWriter writer;
    private VhostUserMessageReader reader;
    private final List<AutoCloseable> toClose = new ArrayList<>();
    private int baseline;

    @BeforeEach
    void connect() throws Exception {
        MessageChannel.Pair pair = MessageChannel.pair();
        frontend = pair.channel();
        backend = MessageChannel.adopt(pair.peerFd());
        writer = new VhostUserMessageWriter(frontend);
        reader = new VhostUserMessageReader(backend, MessageStream.FRONTEND_REQUESTS);
        baseline = ProcessFds.count();
    }

    @AfterEach
    void disconnect() {
        frontend.close();
        backend.close();
    }

    private <T extends AutoCloseable> T closeLater(T resource) {
        toClose.add(resource);
        return resource;
    }

    private void assertNoFdLeak() throws Exception {
        assertNoFdLeak(0);
    }

    /** Closes what the test opened; the fd count must then be the baseline plus {@code delta}. */
    private void assertNoFdLeak(int delta) throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        toClose.clear();
        assertEquals(baseline + delta, ProcessFds.settle(baseline + delta), "open fds after the test");
    }

    private static VhostUserProtocolException rejects(Reason reason, VhostUserMessageReader reader) {
        VhostUserProtocolException e = assertThrows(VhostUserProtocolException.class, reader::read);
        assertEquals(reason, e.reason(), e.getMessage());
        return e;
    }

    private void sendVringNum(int index, int num) throws Exception {
        new VringState.Encoder().wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).index(index).num(num);
        writer.sendRequest(FrontendRequest.SET_VRING_NUM, false, VringState.ENCODED_LENGTH, List.of());
    }

    private void assertVringNum(int index, int num) throws Exception {
        VhostUserMessage m = reader.read();
        assertSame(FrontendRequest.SET_VRING_NUM, m.request());
        VringState.Decoder d = new VringState.Decoder().wrap(m.payload(), 0);
        assertEquals(index, d.index());
        assertEquals(num, d.num());
    }

    @Test
    void shouldCarryAMemTableWithOneFdPerRegionInOrder() throws Exception {
        OwnedFd small = closeLater(MemFd.create("region0", 4096));
        OwnedFd large = closeLater(MemFd.create("region1", 3 * 4096));
        MemTable.Encoder table = new MemTable.Encoder().wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).nregions(2);
        table.region(0).guestPhysAddr(0).memorySize(4096).userAddr(0x7f0000000000L).mmapOffset(0);
        table.region(1).guestPhysAddr(0x100000).memorySize(3 * 4096).userAddr(0x7f0000100000L).mmapOffset(0);
        writer.sendRequest(FrontendRequest.SET_MEM_TABLE, true, MemTable.encodedLength(2), List.of(small, large));

        VhostUserMessage m = reader.read();
        assertSame(FrontendRequest.SET_MEM_TABLE, m.request());
        assertTrue(m.needReply());
        assertEquals(2, m.fdCount());
        MemoryRegion.Decoder r1 = new MemTable.Decoder().wrap(m.payload(), 0).region(1);
        assertEquals(0x100000, r1.guestPhysAddr());
        try (OwnedFd first = m.takeFd(0); OwnedFd second = m.takeFd(1)) {
            assertEquals(4096, MemFd.size(first.get()), "fds arrive in region order");
            assertEquals(3 * 4096, MemFd.size(second.get()));
        }
        m.close();
        assertNoFdLeak();
    }

    @Test
    void shouldCloseFdsNotTakenWhenTheNextMessageIsRead() throws Exception {
        EventFd kick = closeLater(EventFd.create());
        writer.buffer().set(dev.outproc.vhost.message.WireLayout.NATIVE_U64, VhostUserMessageWriter.PAYLOAD_OFFSET,
                VringFdIndex.encode(0, false));
        writer.sendRequest(FrontendRequest.SET_VRING_KICK, false, 8, List.of(kick.owner()));
        VhostUserMessage m = reader.read();
        assertEquals(1, m.fdCount());
        assertEquals(baseline + 2, ProcessFds.count(), "sender's eventfd and the received copy");
        sendVringNum(0, 256);
        assertVringNum(0, 256);
        assertNoFdLeak();
    }

    @Test
    void shouldRejectAnFdOnARequestThatTakesNoneCloseItAndStayInStep() throws Exception {
        EventFd stray = closeLater(EventFd.create());
        new VringState.Encoder().wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).index(0).num(128);
        writer.sendUnchecked(FrontendRequest.SET_VRING_NUM.code(), VhostUserHeader.VERSION | VhostUserHeader.NEED_REPLY_FLAG,
                VringState.ENCODED_LENGTH, List.of(stray.owner()));
        VhostUserProtocolException e = rejects(Reason.TOO_MANY_FDS, reader);
        assertFalse(e.connectionMustClose());
        assertEquals(FrontendRequest.SET_VRING_NUM.code(), e.request());
        assertEquals(baseline + 1, ProcessFds.settle(baseline + 1), "the received copy is closed at once");
        sendVringNum(1, 64);
        assertVringNum(1, 64);
        assertNoFdLeak();
    }

    @Test
    void shouldRejectMoreFdsThanAnyRequestMayCarry() throws Exception {
        List<OwnedFd> nine = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            nine.add(closeLater(MemFd.create("r" + i, 4096)));
        }
        MemTable.Encoder table = new MemTable.Encoder().wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).nregions(8);
        for (int i = 0; i < 8; i++) {
            table.region(i).guestPhysAddr(i * 4096L).memorySize(4096).userAddr(i * 4096L).mmapOffset(0);
        }
        writer.sendUnchecked(FrontendRequest.SET_MEM_TABLE.code(), VhostUserHeader.VERSION, MemTable.encodedLength(8), nine);
        VhostUserProtocolException e = rejects(Reason.TOO_MANY_FDS, reader);
        assertFalse(e.connectionMustClose());
        sendVringNum(0, 8);
        assertVringNum(0, 8);
        assertNoFdLeak();
    }

    @Test
    void shouldRefuseASizeOverTheCapWithoutReadingThePayload() throws Exception {
        EventFd fd = closeLater(EventFd.create());
        MemorySegment header = Arena.ofAuto().allocate(VhostUserHeader.ENCODED_LENGTH);
        new VhostUserHeader.Encoder().wrap(header, 0).request(FrontendRequest.SET_MEM_TABLE.code()).flags(1).size(0x7FFF_FFFFL);
        frontend.write(header, List.of(fd.owner())); // no payload follows: reading one would block
        VhostUserProtocolException e = rejects(Reason.PAYLOAD_TOO_LARGE, reader);
        assertTrue(e.connectionMustClose());
        assertEquals(0x7FFF_FFFFL, e.size());
        assertNoFdLeak();
    }

    @Test
    void shouldRejectBadVersionAndCloseItsFds() throws Exception {
        EventFd fd = closeLater(EventFd.create());
        writer.buffer().set(dev.outproc.vhost.message.WireLayout.NATIVE_U64, VhostUserMessageWriter.PAYLOAD_OFFSET, 0);
        writer.sendUnchecked(FrontendRequest.SET_VRING_CALL.code(), 0, 8, List.of(fd.owner()));
        VhostUserProtocolException e = rejects(Reason.BAD_VERSION, reader);
        assertTrue(e.connectionMustClose());
        assertNoFdLeak();
    }

    @Test
    void shouldConsumeAnUnknownRequestWithNeedReplySoTheCallerCanAnswer() throws Exception {
        writer.buffer().set(NATIVE_U32, VhostUserMessageWriter.PAYLOAD_OFFSET, 0xDEADBEEF);
        writer.sendUnchecked(99, VhostUserHeader.VERSION | VhostUserHeader.NEED_REPLY_FLAG, 16, List.of());
        VhostUserProtocolException e = rejects(Reason.UNKNOWN_REQUEST, reader);
        assertFalse(e.connectionMustClose());
        assertEquals(99, e.request());
        assertEquals(VhostUserHeader.VERSION | VhostUserHeader.NEED_REPLY_FLAG, e.flags());
        sendVringNum(2, 32);
        assertVringNum(2, 32);
        assertNoFdLeak();
    }

    @Test
    void shouldReportAPeerThatClosesInTheMiddleOfAMessage() throws Exception {
        MemorySegment partial = Arena.ofAuto().allocate(VhostUserHeader.ENCODED_LENGTH + 4);
        new VhostUserHeader.Encoder().wrap(partial, 0).request(FrontendRequest.SET_FEATURES.code()).flags(1).size(8);
        frontend.write(partial);
        frontend.close();
        assertThrows(PeerClosedException.class, reader::read);
        assertNoFdLeak(-1); // the front-end's socket is closed
    }

    @Test
    void shouldCarryRepliesWithTheirFds() throws Exception {
        VhostUserMessageWriter backendWriter = new VhostUserMessageWriter(backend);
        VhostUserMessageReader replies = new VhostUserMessageReader(frontend, MessageStream.BACKEND_REPLIES);
        backendWriter.sendReplyU64(FrontendRequest.GET_FEATURES, 1L << 32 | 1L << 30);
        VhostUserMessage features = replies.read();
        assertTrue(features.isReply());
        assertSame(FrontendRequest.GET_FEATURES, features.request());
        assertEquals(1L << 32 | 1L << 30, features.payloadU64());

        OwnedFd inflight = closeLater(MemFd.create("inflight", 8192));
        new InflightDescription.Encoder().wrap(backendWriter.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).clear()
                .mmapSize(8192).mmapOffset(0).numQueues(2).queueSize(128);
        backendWriter.sendReply(FrontendRequest.GET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH, List.of(inflight));
        VhostUserMessage reply = replies.read();
        assertEquals(1, reply.fdCount());
        assertEquals(128, new InflightDescription.Decoder().wrap(reply.payload(), 0).queueSize());
        try (OwnedFd received = reply.takeFd(0)) {
            assertEquals(8192, MemFd.size(received.get()));
        }
        assertNoFdLeak();
    }

    @Test
    void shouldRefuseToSendMalformedMessages() throws Exception {
        assertThrows(IllegalArgumentException.class,
                () -> writer.sendRequest(FrontendRequest.SET_VRING_NUM, false, 4, List.of()));
        writer.buffer().set(dev.outproc.vhost.message.WireLayout.NATIVE_U64, VhostUserMessageWriter.PAYLOAD_OFFSET, 0);
        assertThrows(IllegalArgumentException.class, // an fd is promised (bit 8 clear) but none attached
                () -> writer.sendRequest(FrontendRequest.SET_VRING_KICK, false, 8, List.of()));
        assertThrows(IllegalArgumentException.class, () -> writer.sendRequest(FrontendRequest.GET_FEATURES, false, 5000, List.of()));
        sendVringNum(0, 16); // nothing half-sent before
        assertVringNum(0, 16);
        assertNoFdLeak();
    }
}
