package dev.outproc.vhost.connection;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.message.MessageValidator;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VhostUserRequest;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;


/**
 * Encodes and sends vhost-user messages over a {@link MessageChannel}, from one buffer allocated once.
 *
 * <p>Use: encode the payload into {@link #buffer()} at {@link #PAYLOAD_OFFSET} with a payload encoder,
 * then call {@link #sendRequest} or {@link #sendReply}; the writer fills in the header, checks the
 * message with {@link MessageValidator} (a malformed outgoing message is a programming error and throws
 * {@link IllegalArgumentException}) and sends it with the fds attached to its first byte.
 * {@snippet :
 * synchronized (writer) {
 *     vringState.wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).index(0).num(256);
 *     writer.sendRequest(FrontendRequest.SET_VRING_NUM, false, VringState.ENCODED_LENGTH, List.of());
 * }
 * }
 * Threads sharing a writer must hold its lock from encoding to sending, as above; the {@code send*}
 * methods take the same lock. Sending a message of a size sent before allocates nothing in this class.
 */
public final class VhostUserMessageWriter {
    /** Where the payload starts in {@link #buffer()}. */
    public static final int PAYLOAD_OFFSET = VhostUserHeader.ENCODED_LENGTH;

    private final MessageChannel channel;
    private final MemorySegment buffer;
    private final SliceCache messages;
    private final VhostUserHeader.Encoder header = new VhostUserHeader.Encoder();
    private final U64Payload.Encoder u64 = new U64Payload.Encoder();
    private final int maxPayloadBytes;

    /**
     * Creates a writer with room for payloads of {@value MessageValidator#DEFAULT_MAX_PAYLOAD_BYTES} bytes.
     *
     * @param channel the connection
     */
    public VhostUserMessageWriter(MessageChannel channel) {
        this.channel = channel;
        this.maxPayloadBytes = MessageValidator.DEFAULT_MAX_PAYLOAD_BYTES;
        this.buffer = Arena.ofAuto().allocate(PAYLOAD_OFFSET + maxPayloadBytes, 8);
        this.messages = new SliceCache(buffer);
        header.wrap(buffer, 0);
        u64.wrap(buffer, PAYLOAD_OFFSET);
    }

    /** {@return the whole buffer: header at 0, payload at {@link #PAYLOAD_OFFSET}} */
    public MemorySegment buffer() {
        return buffer;
    }

    /** {@return the largest payload this writer sends} */
    public int maxPayloadBytes() {
        return maxPayloadBytes;
    }

    /**
     * Sends a request whose payload is already in {@link #buffer()}.
     *
     * @param request the request
     * @param needReply whether to set NEED_REPLY
     * @param payloadSize the payload size
     * @param fds the fds to attach (they stay owned by the caller)
     * @throws IOException when the channel fails
     * @throws IllegalArgumentException when the message breaks a syntax rule
     */
    public synchronized void sendRequest(VhostUserRequest request, boolean needReply, int payloadSize, List<OwnedFd> fds)
            throws IOException {
        send(request, VhostUserHeader.VERSION | (needReply ? VhostUserHeader.NEED_REPLY_FLAG : 0), false, payloadSize, fds);
    }

    /**
     * Sends a reply whose payload is already in {@link #buffer()}.
     *
     * @param request the request answered
     * @param payloadSize the payload size
     * @param fds the fds to attach (they stay owned by the caller)
     * @throws IOException when the channel fails
     * @throws IllegalArgumentException when the message breaks a syntax rule
     */
    public synchronized void sendReply(VhostUserRequest request, int payloadSize, List<OwnedFd> fds) throws IOException {
        send(request, VhostUserHeader.VERSION | VhostUserHeader.REPLY_FLAG, true, payloadSize, fds);
    }

    /**
     * Sends a request without payload or fds.
     *
     * @param request the request
     * @param needReply whether to set NEED_REPLY
     * @throws IOException when the channel fails
     */
    public synchronized void sendRequest(VhostUserRequest request, boolean needReply) throws IOException {
        sendRequest(request, needReply, 0, List.of());
    }

    /**
     * Sends a request whose payload is a u64.
     *
     * @param request the request
     * @param needReply whether to set NEED_REPLY
     * @param value the payload
     * @throws IOException when the channel fails
     */
    public synchronized void sendRequestU64(VhostUserRequest request, boolean needReply, long value) throws IOException {
        u64.value(value);
        sendRequest(request, needReply, U64Payload.ENCODED_LENGTH, List.of());
    }

    /**
     * Sends a reply whose payload is a u64: an explicit u64 reply, or the REPLY_ACK status (0 = success).
     *
     * @param request the request answered
     * @param value the payload
     * @throws IOException when the channel fails
     */
    public synchronized void sendReplyU64(VhostUserRequest request, long value) throws IOException {
        u64.value(value);
        sendReply(request, U64Payload.ENCODED_LENGTH, List.of());
    }

    /**
     * Sends bytes as they are, without any check: for tests that play a hostile peer.
     *
     * @param request the header's request number
     * @param flags the header's flags
     * @param payloadSize the header's size and the number of payload bytes sent from {@link #buffer()}
     * @param fds the fds to attach
     * @throws IOException when the channel fails
     */
    public synchronized void sendUnchecked(long request, long flags, int payloadSize, List<OwnedFd> fds) throws IOException {
        checkRoom(payloadSize);
        header.request(request).flags(flags).size(payloadSize);
        channel.write(messages.prefix(PAYLOAD_OFFSET + payloadSize), fds);
    }

    private void send(VhostUserRequest request, int flags, boolean reply, int payloadSize, List<OwnedFd> fds)
            throws IOException {
        checkRoom(payloadSize);
        try {
            MessageValidator.checkPayload(request, reply, buffer, PAYLOAD_OFFSET, payloadSize, fds.size());
        } catch (VhostUserProtocolException e) {
            throw new IllegalArgumentException("refusing to send a malformed message: " + e.getMessage(), e);
        }
        header.request(request.code()).flags(flags).size(payloadSize);
        channel.write(messages.prefix(PAYLOAD_OFFSET + payloadSize), fds);
    }

    private void checkRoom(int payloadSize) {
        if (payloadSize < 0 || payloadSize > maxPayloadBytes) {
            throw new IllegalArgumentException("payload size must be 0.." + maxPayloadBytes + ", size=" + payloadSize);
        }
    }
}
