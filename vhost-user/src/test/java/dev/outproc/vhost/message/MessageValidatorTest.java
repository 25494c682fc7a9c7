package dev.outproc.vhost.message;

import dev.outproc.vhost.message.VhostUserProtocolException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.Messages.message;
import static dev.outproc.vhost.message.Messages.reply;
import static dev.outproc.vhost.message.Messages.request;
import static dev.outproc.vhost.message.MessageStream.BACKEND_REPLIES;
import static dev.outproc.vhost.message.MessageStream.FRONTEND_REQUESTS;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One test per syntax rule of the header and the payloads. */
class MessageValidatorTest {
    private static final int CAP = MessageValidator.DEFAULT_MAX_PAYLOAD_BYTES;
    private static final int P = VhostUserHeader.ENCODED_LENGTH;

    private static VhostUserProtocolException rejects(Reason reason, Executable check) {
        VhostUserProtocolException e = assertThrows(VhostUserProtocolException.class, check);
        assertEquals(reason, e.reason(), e.getMessage());
        return e;
    }

    private static VhostUserProtocolException rejects(Reason reason, MessageStream stream, MemorySegment m, int fds) {
        return rejects(reason, () -> MessageValidator.check(stream, m, fds, CAP));
    }

    static VhostUserRequest[] allRequests() {
        return Messages.allRequests();
    }

    @ParameterizedTest
    @MethodSource("allRequests")
    void shouldAcceptAMinimalValidRequestOfEveryType(VhostUserRequest r) throws Exception {
        MemorySegment m = request(r, r.requestPayload().minBytes());
        int fds = Messages.validRequestFds(r, m);
        assertSame(r, MessageValidator.check(Messages.requestStream(r), m, fds, CAP));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 2, 3})
    void shouldRejectVersionOtherThanOne(int version) {
        VhostUserProtocolException e = rejects(Reason.BAD_VERSION, FRONTEND_REQUESTS, message(1, version, 0), 0);
        assertTrue(e.connectionMustClose());
        assertEquals(1, e.request());
        assertEquals(version, e.flags());
    }

    @ParameterizedTest
    @ValueSource(longs = {0x10, 0x20, 0x100, 0x8000_0000L})
    void shouldRejectReservedFlagBits(long bit) {
        VhostUserProtocolException e = rejects(Reason.RESERVED_FLAGS, FRONTEND_REQUESTS, message(1, 1 | bit, 0), 0);
        assertTrue(e.connectionMustClose());
    }

    @Test
    void shouldRejectReplyFlagOnARequestAndItsAbsenceOnAReply() {
        rejects(Reason.WRONG_REPLY_FLAG, FRONTEND_REQUESTS, message(1, 1 | VhostUserHeader.REPLY_FLAG, 0), 0);
        rejects(Reason.WRONG_REPLY_FLAG, BACKEND_REPLIES, message(1, 1, 8), 0);
        rejects(Reason.NEED_REPLY_ON_REPLY, BACKEND_REPLIES, message(1, 1 | VhostUserHeader.REPLY_FLAG | VhostUserHeader.NEED_REPLY_FLAG, 8), 0);
    }

    @Test
    void shouldRejectAHeaderThatLiesAboutItsSize() {
        MemorySegment m = request(FrontendRequest.SET_FEATURES, 8);
        m.set(NATIVE_U32, VhostUserHeader.SIZE_OFFSET, 16); // says 16, carries 8
        VhostUserProtocolException e = rejects(Reason.PAYLOAD_SIZE, FRONTEND_REQUESTS, m, 0);
        assertTrue(e.connectionMustClose());
        assertEquals(16, e.size());
    }

    @Test
    void shouldRejectSizeOverTheCapWithoutLookingFurther() {
        VhostUserProtocolException e = rejects(Reason.PAYLOAD_TOO_LARGE,
                () -> MessageValidator.checkFraming(FRONTEND_REQUESTS, 5, 1, 0xFFFF_FFFFL, CAP));
        assertTrue(e.connectionMustClose());
        assertTrue(e.getMessage().contains("close the connection"), e.getMessage());
        assertEquals(0xFFFF_FFFFL, e.size());
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 45, 46, 1000, 0xFFFF_FFFFL})
    void shouldRejectUnknownFrontendRequestsButStayInStep(long code) {
        VhostUserProtocolException e = rejects(Reason.UNKNOWN_REQUEST, FRONTEND_REQUESTS,
                message(code, 1 | VhostUserHeader.NEED_REPLY_FLAG, 8), 0);
        assertFalse(e.connectionMustClose());
        assertEquals(code, e.request());
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 11, 44})
    void shouldRejectUnknownBackendRequests(long code) {
        rejects(Reason.UNKNOWN_REQUEST, MessageStream.BACKEND_REQUESTS, message(code, 1, 0), 0);
    }

    @ParameterizedTest
    @MethodSource("allRequests")
    void shouldRejectShortAndLongPayloads(VhostUserRequest r) {
        PayloadType t = r.requestPayload();
        MessageStream stream = Messages.requestStream(r);
        if (t.minBytes() > 0) {
            MemorySegment shortOne = request(r, t.minBytes() - 1);
            VhostUserProtocolException e = rejects(Reason.PAYLOAD_SIZE, stream, shortOne, Messages.validRequestFds(r, request(r, t.minBytes())));
            assertFalse(e.connectionMustClose());
            assertEquals(r.code(), e.request(), "the header values travel with a payload error");
        }
        MemorySegment longOne = request(r, t.maxBytes() + 1);
        int fds = Messages.validRequestFds(r, longOne);
        rejects(t.maxBytes() + 1 > CAP ? Reason.PAYLOAD_TOO_LARGE : Reason.PAYLOAD_SIZE, stream, longOne, fds);
    }

    @ParameterizedTest
    @MethodSource("allRequests")
    void shouldRejectOneFdMoreThanTheRequestTakes(VhostUserRequest r) {
        MemorySegment m = request(r, r.requestPayload().minBytes());
        int fds = Messages.validRequestFds(r, m);
        rejects(Reason.TOO_MANY_FDS, Messages.requestStream(r), m, Math.max(fds, r.maxRequestFds()) + 1);
        if (fds > 0) {
            rejects(Reason.MISSING_FDS, Messages.requestStream(r), m, fds - 1);
        }
    }

    @Test
    void shouldRequireOneFdPerMemoryRegion() throws Exception {
        MemorySegment m = request(FrontendRequest.SET_MEM_TABLE, MemTable.encodedLength(3));
        new MemTable.Encoder().wrap(m, P).nregions(3);
        assertSame(FrontendRequest.SET_MEM_TABLE, MessageValidator.check(FRONTEND_REQUESTS, m, 3, CAP));
        rejects(Reason.MISSING_FDS, FRONTEND_REQUESTS, m, 2);
        rejects(Reason.TOO_MANY_FDS, FRONTEND_REQUESTS, m, 4);
    }

    @Test
    void shouldRejectMemTableWithTooManyRegionsOrASizeThatDisagreesWithTheCount() {
        MemorySegment nine = request(FrontendRequest.SET_MEM_TABLE, MemTable.encodedLength(8));
        nine.set(NATIVE_U32, P, 9);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, nine, 8);
        MemorySegment huge = request(FrontendRequest.SET_MEM_TABLE, MemTable.encodedLength(1));
        huge.set(NATIVE_U32, P, 0x8000_0001);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, huge, 1);
        MemorySegment lying = request(FrontendRequest.SET_MEM_TABLE, MemTable.encodedLength(1));
        lying.set(NATIVE_U32, P, 2);
        rejects(Reason.PAYLOAD_SIZE, FRONTEND_REQUESTS, lying, 2);
    }

    @Test
    void shouldRejectConfigAccessesOverTheLimitOrInconsistent() throws Exception {
        MemorySegment ok = request(FrontendRequest.SET_CONFIG, ConfigSpace.encodedLength(4));
        new ConfigSpace.Encoder().wrap(ok, P).access(8, 4, ConfigSpace.FLAGS_MIGRATION);
        MessageValidator.check(FRONTEND_REQUESTS, ok, 0, CAP);

        MemorySegment mismatch = request(FrontendRequest.SET_CONFIG, ConfigSpace.encodedLength(4));
        new ConfigSpace.Encoder().wrap(mismatch, P).access(8, 5, 0);
        rejects(Reason.PAYLOAD_SIZE, FRONTEND_REQUESTS, mismatch, 0);

        MemorySegment tooBig = request(FrontendRequest.GET_CONFIG, ConfigSpace.encodedLength(256));
        tooBig.set(NATIVE_U32, P + ConfigSpace.CONFIG_SIZE_OFFSET, 0xFFFF_FFF4);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, tooBig, 0);

        MemorySegment flags = request(FrontendRequest.SET_CONFIG, ConfigSpace.encodedLength(0));
        flags.set(NATIVE_U32, P + ConfigSpace.FLAGS_OFFSET, 2);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, flags, 0);
    }

    @Test
    void shouldTieKickFdsToTheNoFdBitAndRejectUndefinedBits() throws Exception {
        for (FrontendRequest r : new FrontendRequest[] {FrontendRequest.SET_VRING_KICK, FrontendRequest.SET_VRING_CALL,
                FrontendRequest.SET_VRING_ERR}) {
            MemorySegment withFd = request(r, 8);
            withFd.set(NATIVE_U64, P, 3);
            MessageValidator.check(FRONTEND_REQUESTS, withFd, 1, CAP);
            rejects(Reason.MISSING_FDS, FRONTEND_REQUESTS, withFd, 0);

            MemorySegment noFd = request(r, 8);
            noFd.set(NATIVE_U64, P, VringFdIndex.encode(3, true));
            MessageValidator.check(FRONTEND_REQUESTS, noFd, 0, CAP);
            rejects(Reason.TOO_MANY_FDS, FRONTEND_REQUESTS, noFd, 1);

            MemorySegment bit9 = request(r, 8);
            bit9.set(NATIVE_U64, P, 0x200);
            rejects(Reason.RESERVED_FIELD, FRONTEND_REQUESTS, bit9, 1);
        }
    }

    @Test
    void shouldAcceptAnyNumInGetVringBaseAsDpdkSendsIt() throws Exception {
        MemorySegment m = request(FrontendRequest.GET_VRING_BASE, 8);
        m.set(NATIVE_U32, P + VringState.NUM_OFFSET, 49509);
        assertEquals(FrontendRequest.GET_VRING_BASE, MessageValidator.check(FRONTEND_REQUESTS, m, 0, CAP));
    }

    @Test
    void shouldRejectNonZeroReservedNum() {
        for (VhostUserRequest r : new VhostUserRequest[] {FrontendRequest.VRING_KICK,
                BackendRequest.VRING_CALL, BackendRequest.VRING_ERR}) {
            MemorySegment m = request(r, 8);
            m.set(NATIVE_U32, P + VringState.NUM_OFFSET, 1);
            rejects(Reason.RESERVED_FIELD, Messages.requestStream(r), m, 0);
        }
    }

    @Test
    void shouldRejectEnableAndEndianOtherThanZeroOrOne() throws Exception {
        for (FrontendRequest r : new FrontendRequest[] {FrontendRequest.SET_VRING_ENABLE, FrontendRequest.SET_VRING_ENDIAN}) {
            MemorySegment m = request(r, 8);
            m.set(NATIVE_U32, P + VringState.NUM_OFFSET, 1);
            MessageValidator.check(FRONTEND_REQUESTS, m, 0, CAP);
            m.set(NATIVE_U32, P + VringState.NUM_OFFSET, 2);
            rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, m, 0);
        }
    }

    @Test
    void shouldRejectFieldValuesTheSpecificationDoesNotDefine() {
        MemorySegment addr = request(FrontendRequest.SET_VRING_ADDR, VringAddr.ENCODED_LENGTH);
        addr.set(NATIVE_U32, P + VringAddr.FLAGS_OFFSET, 2);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, addr, 0);

        MemorySegment miss = request(FrontendRequest.IOTLB_MSG, IotlbMsg.ENCODED_LENGTH);
        new IotlbMsg.Encoder().wrap(miss, P).type(IotlbMsg.TYPE_MISS); // a miss comes from the back-end only
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, miss, 0);
        MemorySegment update = request(BackendRequest.IOTLB_MSG, IotlbMsg.ENCODED_LENGTH);
        new IotlbMsg.Encoder().wrap(update, P).type(IotlbMsg.TYPE_UPDATE);
        rejects(Reason.INVALID_FIELD, MessageStream.BACKEND_REQUESTS, update, 0);

        MemorySegment direction = request(FrontendRequest.SET_DEVICE_STATE_FD, 8);
        direction.set(NATIVE_U32, P, 2);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, direction, 1);
        MemorySegment phase = request(FrontendRequest.SET_DEVICE_STATE_FD, 8);
        phase.set(NATIVE_U32, P + 4, 1);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, phase, 1);

        MemorySegment shmem = request(BackendRequest.SHMEM_MAP, ShmemMap.ENCODED_LENGTH);
        shmem.set(NATIVE_U64, P + ShmemMap.FLAGS_OFFSET, 2);
        rejects(Reason.INVALID_FIELD, MessageStream.BACKEND_REQUESTS, shmem, 1);

        MemorySegment status = request(FrontendRequest.SET_STATUS, 8);
        status.set(NATIVE_U64, P, 0x100);
        rejects(Reason.INVALID_FIELD, FRONTEND_REQUESTS, status, 0);

        MemorySegment notifier = request(BackendRequest.VRING_HOST_NOTIFIER_MSG, VringArea.ENCODED_LENGTH);
        notifier.set(NATIVE_U64, P, 0x1_0000_0000L);
        rejects(Reason.RESERVED_FIELD, MessageStream.BACKEND_REQUESTS, notifier, 1);
    }

    @Test
    void shouldAcceptReplyAckInPlaceOfPostcopyRepliesAndEmptyGetConfigReply() throws Exception {
        MessageValidator.check(BACKEND_REPLIES, reply(FrontendRequest.SET_MEM_TABLE, 8), 0, CAP);
        MessageValidator.check(BACKEND_REPLIES, reply(FrontendRequest.ADD_MEM_REG, 8), 0, CAP);
        MessageValidator.check(BACKEND_REPLIES, reply(FrontendRequest.GET_CONFIG, 0), 0, CAP);
        rejects(Reason.PAYLOAD_SIZE, BACKEND_REPLIES, reply(FrontendRequest.GET_VRING_BASE, 0), 0);
        rejects(Reason.PAYLOAD_SIZE, BACKEND_REPLIES, reply(FrontendRequest.SET_VRING_NUM, 4), 0);
    }

    @Test
    void shouldCheckFdRulesOfReplies() throws Exception {
        rejects(Reason.MISSING_FDS, BACKEND_REPLIES, reply(FrontendRequest.GET_INFLIGHT_FD, InflightDescription.ENCODED_LENGTH), 0);
        rejects(Reason.MISSING_FDS, BACKEND_REPLIES, reply(FrontendRequest.POSTCOPY_ADVISE, 0), 0);
        rejects(Reason.TOO_MANY_FDS, BACKEND_REPLIES, reply(FrontendRequest.GET_FEATURES, 8), 1);

        MemorySegment stateError = reply(FrontendRequest.SET_DEVICE_STATE_FD, 8);
        stateError.set(NATIVE_U64, P, 0x05); // error 5, and (bit 8 clear) an fd: forbidden together
        rejects(Reason.INVALID_FIELD, BACKEND_REPLIES, stateError, 1);
        MemorySegment stateFd = reply(FrontendRequest.SET_DEVICE_STATE_FD, 8);
        MessageValidator.check(BACKEND_REPLIES, stateFd, 1, CAP);
        rejects(Reason.MISSING_FDS, BACKEND_REPLIES, stateFd, 0);

        MemorySegment lookupFailed = reply(BackendRequest.SHARED_OBJECT_LOOKUP, 8);
        lookupFailed.set(NATIVE_U64, P, 1);
        rejects(Reason.TOO_MANY_FDS, MessageStream.FRONTEND_REPLIES, lookupFailed, 1);

        MemorySegment shm = reply(FrontendRequest.GET_SHMEM_CONFIG, ShmemConfig.ENCODED_LENGTH);
        shm.set(NATIVE_U32, P, 257);
        rejects(Reason.INVALID_FIELD, BACKEND_REPLIES, shm, 0);
    }

    @Test
    void shouldLetRemMemRegCarryTheOneStrayFdTheSpecificationTolerates() throws Exception {
        MemorySegment m = request(FrontendRequest.REM_MEM_REG, SingleMemRegion.ENCODED_LENGTH);
        MessageValidator.check(FRONTEND_REQUESTS, m, 0, CAP);
        MessageValidator.check(FRONTEND_REQUESTS, m, 1, CAP);
        rejects(Reason.TOO_MANY_FDS, FRONTEND_REQUESTS, m, 2);
    }

    @Test
    void shouldRejectAMessageShorterThanAHeader() {
        VhostUserProtocolException e = rejects(Reason.PAYLOAD_SIZE, FRONTEND_REQUESTS, MemorySegment.ofArray(new byte[11]), 0);
        assertTrue(e.connectionMustClose());
    }
}
