package dev.outproc.vhost.connection;

import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.MessageValidator;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VhostUserRequest;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;


/**
 * Reads vhost-user messages from a {@link MessageChannel} and checks their syntax.
 *
 * <p>One read: the 12-byte header with the fds that arrive with it (at most
 * {@link MessageStream#maxFds()}; more are closed by the channel and reported as
 * {@link VhostUserProtocolException.Reason#TOO_MANY_FDS}); the framing checks (version, reserved flags,
 * REPLY flag, size at most the cap) <em>before</em> any payload byte is read; the payload into a buffer
 * allocated once; then the request lookup and the payload and fd checks of {@link MessageValidator}.
 *
 * <p>Errors: a {@link VhostUserProtocolException} always comes after every fd of the message was closed.
 * If {@link VhostUserProtocolException#connectionMustClose()} is true (bad header, or a size over the cap
 * whose payload was deliberately not read), the stream is out of step and the caller must close the
 * connection; otherwise the whole message was consumed and the caller may answer with an error.
 * A peer that closes mid-message gives a {@link PeerClosedException}.
 *
 * <p>Not thread-safe: one reader thread per connection. The returned {@link VhostUserMessage} is reused.
 */
public final class VhostUserMessageReader {
    private final MessageChannel channel;
    private final MessageStream stream;
    private final int maxPayloadBytes;
    private final MemorySegment header;
    private final VhostUserHeader.Decoder headerFields = new VhostUserHeader.Decoder();
    private final SliceCache payloads;
    private final VhostUserMessage message = new VhostUserMessage();

    /**
     * Creates a reader with the default cap of {@value MessageValidator#DEFAULT_MAX_PAYLOAD_BYTES} bytes.
     *
     * @param channel the connection
     * @param stream what messages arrive on it
     */
    public VhostUserMessageReader(MessageChannel channel, MessageStream stream) {
        this(channel, stream, MessageValidator.DEFAULT_MAX_PAYLOAD_BYTES);
    }

    /**
     * Creates a reader.
     *
     * @param channel the connection
     * @param stream what messages arrive on it
     * @param maxPayloadBytes the payload cap; at least the largest payload of the stream's requests
     */
    public VhostUserMessageReader(MessageChannel channel, MessageStream stream, int maxPayloadBytes) {
        if (maxPayloadBytes < 2056 || maxPayloadBytes > 1 << 20) {
            throw new IllegalArgumentException("payload cap must be 2056..1048576 bytes (the largest payload is 2056), cap="
                    + maxPayloadBytes);
        }
        this.channel = channel;
        this.stream = stream;
        this.maxPayloadBytes = maxPayloadBytes;
        Arena arena = Arena.ofAuto();
        this.header = arena.allocate(VhostUserHeader.ENCODED_LENGTH, 8);
        headerFields.wrap(header, 0);
        this.payloads = new SliceCache(arena.allocate(maxPayloadBytes, 8));
    }

    /** {@return what messages this reader expects} */
    public MessageStream stream() {
        return stream;
    }

    /** {@return the payload cap} */
    public int maxPayloadBytes() {
        return maxPayloadBytes;
    }

    /**
     * Reads and checks the next message. Closes the fds the previous message still owned.
     *
     * @return the message, a view reused by the next call
     * @throws VhostUserProtocolException when the message breaks a syntax rule (its fds are closed)
     * @throws PeerClosedException when the peer closes before a whole message arrived
     * @throws IOException on other transport failures
     */
    public VhostUserMessage read() throws IOException {
        message.close();
        message.set(null, 0, 0, payloads.prefix(0), ReceivedFds.none());
        ReceivedFds fds = channel.readFully(header, stream.maxFds());
        try {
            long request = headerFields.request();
            long flags = headerFields.flags();
            long size = headerFields.size();
            MessageValidator.checkFraming(stream, request, flags, size, maxPayloadBytes);
            MemorySegment payload = payloads.prefix((int) size);
            if (size > 0) {
                channel.readFully(payload);
            }
            VhostUserRequest r = MessageValidator.lookup(stream, request, flags, size);
            if (fds.dropped() > 0) {
                throw new VhostUserProtocolException(VhostUserProtocolException.Reason.TOO_MANY_FDS, request, flags, size,
                        false, "more fds than any " + stream + " message may carry, fds=" + fds.total()
                        + ", most=" + stream.maxFds());
            }
            try {
                MessageValidator.checkPayload(r, stream.replies(), payload, 0, size, fds.count());
            } catch (VhostUserProtocolException e) {
                throw e.withHeader(request, flags, size);
            }
            message.set(r, flags, (int) size, payload, fds);
            return message;
        } catch (IOException | RuntimeException e) {
            fds.close();
            throw e;
        }
    }
}
