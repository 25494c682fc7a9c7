package dev.outproc.vhost.frontend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VringState;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The front-end's side of the control socket: requests out, replies in, and the REPLY_ACK policy (once
 * REPLY_ACK is negotiated, a request without a reply of its own asks for one, and a non-zero status
 * becomes a {@link FrontendException}). Payloads are encoded in place in the writer's buffer.
 */
final class RequestChannel {
    private final MessageChannel channel;
    private final VhostUserMessageReader reader;
    private final VhostUserMessageWriter writer;
    private final U64Payload.Encoder u64 = new U64Payload.Encoder();
    private final VringState.Encoder vringState = new VringState.Encoder();
    private boolean replyAck;

    RequestChannel(MessageChannel channel) {
        this.channel = channel;
        this.reader = new VhostUserMessageReader(channel, MessageStream.BACKEND_REPLIES);
        this.writer = new VhostUserMessageWriter(channel);
    }

    MessageChannel channel() {
        return channel;
    }

    VhostUserMessageReader reader() {
        return reader;
    }

    VhostUserMessageWriter writer() {
        return writer;
    }

    /** Turns the REPLY_ACK policy on or off (from the next request on). */
    void replyAck(boolean on) {
        replyAck = on;
    }

    /** {@return the writer's payload area, {@code size} bytes} */
    MemorySegment body(int size) {
        return writer.buffer().asSlice(VhostUserMessageWriter.PAYLOAD_OFFSET, size);
    }

    /** Sends a request whose payload is in the buffer; waits for the ack when REPLY_ACK is on. */
    void send(FrontendRequest r, int size, List<OwnedFd> fds) throws IOException {
        boolean ack = replyAck && !r.alwaysReplies();
        writer.sendRequest(r, ack, size, fds);
        if (ack) {
            try (VhostUserMessage m = expectReply(r)) {
                long status = m.payloadU64();
                if (status != 0) {
                    throw new FrontendException(status, r.specName() + " refused by the back-end, status=" + status);
                }
            }
        }
    }

    /** Sends a request without asking for an ack, whatever the policy (SET_PROTOCOL_FEATURES, which sets it). */
    void sendWithoutAck(FrontendRequest r, int size) throws IOException {
        writer.sendRequest(r, false, size, List.of());
    }

    /** Sends a request that always replies and returns the reply (the caller closes it). */
    VhostUserMessage call(FrontendRequest r, int size, List<OwnedFd> fds) throws IOException {
        writer.sendRequest(r, false, size, fds);
        return expectReply(r);
    }

    private VhostUserMessage expectReply(FrontendRequest r) throws IOException {
        VhostUserMessage m = reader.read();
        if (m.request() != r) {
            m.close();
            throw new VhostUserProtocolException(VhostUserProtocolException.Reason.INVALID_FIELD,
                    "expected a reply to " + r.specName() + ", got " + m.request());
        }
        return m;
    }

    /** Sends a request without payload and returns its u64 reply. */
    long callU64(FrontendRequest r) throws IOException {
        try (VhostUserMessage m = call(r, 0, List.of())) {
            return m.payloadU64();
        }
    }

    /** Sends a request whose payload is a u64. */
    void sendU64(FrontendRequest r, long value) throws IOException {
        encodeU64(value);
        send(r, U64Payload.ENCODED_LENGTH, List.of());
    }

    /** Puts a u64 payload in the buffer. */
    void encodeU64(long value) {
        u64.wrap(body(U64Payload.ENCODED_LENGTH), 0).value(value);
    }

    /** Sends a VringState; {@code num} is the u32 as sent (a packed vring base word may have bit 31 set). */
    void sendState(FrontendRequest r, int index, int num) throws IOException {
        encodeState(index, num);
        send(r, VringState.ENCODED_LENGTH, List.of());
    }

    /** Puts a VringState payload in the buffer. */
    void encodeState(int index, int num) {
        vringState.wrap(body(VringState.ENCODED_LENGTH), 0).index(index).num(Integer.toUnsignedLong(num));
    }
}
