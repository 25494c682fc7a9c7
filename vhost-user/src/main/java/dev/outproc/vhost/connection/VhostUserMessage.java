package dev.outproc.vhost.connection;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserRequest;
import dev.outproc.vhost.message.U64Payload;

import java.lang.foreign.MemorySegment;

/**
 * A received message, validated by syntax: the header, the request it names, the payload bytes and the
 * fds that came with it. A view owned by its {@link VhostUserMessageReader} and reused by the next
 * {@link VhostUserMessageReader#read()}: copy out what must outlive it, and {@link #takeFd(int) take} the
 * fds to keep. Fds not taken are closed by {@link #close()} or, at the latest, by the next read.
 *
 * <p>Wrap the payload with the codec for {@link #request()}'s payload type, e.g.
 * {@snippet :
 * VringState.Decoder state = new VringState.Decoder(); // once per connection
 * state.wrap(message.payload(), 0);
 * long queueSize = state.num();
 * }
 */
public final class VhostUserMessage implements AutoCloseable {
    private VhostUserRequest request;
    private long flags;
    private int size;
    private MemorySegment payload;
    private ReceivedFds fds = ReceivedFds.none();
    private final U64Payload.Decoder u64 = new U64Payload.Decoder();

    VhostUserMessage() {
    }

    void set(VhostUserRequest request, long flags, int size, MemorySegment payload, ReceivedFds fds) {
        this.request = request;
        this.flags = flags;
        this.size = size;
        this.payload = payload;
        this.fds = fds;
    }

    /** {@return the request (or, for a reply, the request answered)} */
    public VhostUserRequest request() {
        return request;
    }

    /** {@return the header's flags} */
    public long flags() {
        return flags;
    }

    /** {@return whether the sender asked for a REPLY_ACK} */
    public boolean needReply() {
        return (flags & VhostUserHeader.NEED_REPLY_FLAG) != 0;
    }

    /** {@return whether this is a reply} */
    public boolean isReply() {
        return (flags & VhostUserHeader.REPLY_FLAG) != 0;
    }

    /** {@return the payload size} */
    public int size() {
        return size;
    }

    /** {@return the payload bytes, exactly {@link #size()} long; valid until the next read} */
    public MemorySegment payload() {
        return payload;
    }

    /**
     * {@return the payload as a u64} (for the many requests and replies whose payload is one)
     *
     * @throws IllegalStateException when the payload is not 8 bytes
     */
    public long payloadU64() {
        if (size != U64Payload.ENCODED_LENGTH) {
            throw new IllegalStateException(request + " payload is " + size + " bytes, not a u64");
        }
        return u64.wrap(payload, 0).value();
    }

    /** {@return how many fds came with the message (and were not taken)} */
    public int fdCount() {
        return fds.count();
    }

    /** {@return the received fds, still owned by this message} */
    public ReceivedFds fds() {
        return fds;
    }

    /**
     * Takes ownership of one fd; the message no longer closes it.
     *
     * @param index position in arrival order
     * @return the owner
     */
    public OwnedFd takeFd(int index) {
        return fds.take(index);
    }

    /** Closes every fd not taken. The view stays readable until the next read. */
    @Override
    public void close() {
        fds.close();
    }

    @Override
    public String toString() {
        return (isReply() ? "reply to " : "") + request + " flags=0x" + Long.toHexString(flags) + " size=" + size
                + " fds=" + fds.count();
    }
}
