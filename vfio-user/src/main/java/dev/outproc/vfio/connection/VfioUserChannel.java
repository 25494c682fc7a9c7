package dev.outproc.vfio.connection;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.ReadTimeoutException;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.transport.TransportException;
import dev.outproc.vfio.message.MessageValidator;
import dev.outproc.vfio.message.VfioUserHeader;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * vfio-user framing over a {@link MessageChannel}: reads the 16-byte header (with any fds, which travel
 * with the first bytes), checks it ({@link MessageValidator#checkHeader}), then reads exactly the rest of
 * the message into a buffer this channel owns. One thread receives at a time; sends are serialized by the
 * underlying channel, so device threads may send while the receiving thread waits.
 *
 * <p>The receive buffer is reused: a {@link Received} is valid until the next {@link #receive}. Nothing is
 * allocated per message once the buffer has grown to the largest message seen.
 */
public final class VfioUserChannel implements AutoCloseable {
    private final MessageChannel channel;
    private final Arena arena = Arena.ofShared();
    private final long maxMessageBytes;
    private final int maxFds;
    private MemorySegment buffer;
    private int bodyTimeoutMillis;
    private final VfioUserHeader.Decoder header = new VfioUserHeader.Decoder();

    /**
     * Wraps a connected channel.
     *
     * @param channel the socket (owned from now on)
     * @param maxMessageBytes the largest message accepted, header included
     * @param maxFds the most fds accepted with one message (more are closed on arrival and make it fail)
     */
    public VfioUserChannel(MessageChannel channel, long maxMessageBytes, int maxFds) {
        this.channel = channel;
        this.maxMessageBytes = maxMessageBytes;
        this.maxFds = maxFds;
        this.buffer = arena.allocate(Math.min(maxMessageBytes, 64 * 1024), 8);
    }

    /**
     * Bounds the time the rest of a message may take once its header arrived; 0 waits forever.
     *
     * @param millis the timeout
     */
    public void setBodyTimeoutMillis(int millis) {
        this.bodyTimeoutMillis = millis;
    }

    /**
     * A message as received: the buffer slice holding it (header at 0) and the fds that came with it.
     *
     * @param message the whole message, valid until the next receive
     * @param fds the fds, owned by the receiver
     * @param droppedFds fds beyond the limit, closed on arrival
     */
    public record Received(MemorySegment message, ReceivedFds fds, int droppedFds) {
    }

    /**
     * Receives one message. A header that fails {@link MessageValidator#checkHeader} is reported with the
     * header still readable in {@link HeaderException#header()} so the caller can answer it.
     *
     * @return the message
     * @throws HeaderException when the header is invalid (the rest of the message is not read)
     * @throws IOException on transport failures and when the peer closes
     */
    public Received receive() throws IOException {
        ReceivedFds fds = channel.readFully(buffer.asSlice(0, VfioUserHeader.ENCODED_LENGTH), maxFds);
        try {
            try {
                MessageValidator.checkHeader(buffer, 0, maxMessageBytes);
            } catch (dev.outproc.vfio.message.VfioUserProtocolException e) {
                MemorySegment copy = Arena.ofAuto().allocate(VfioUserHeader.ENCODED_LENGTH);
                copy.copyFrom(buffer.asSlice(0, VfioUserHeader.ENCODED_LENGTH));
                throw new HeaderException(e, copy);
            }
            long size = header.wrap(buffer, 0).size();
            if (size > buffer.byteSize()) {
                MemorySegment grown = arena.allocate(size, 8);
                grown.copyFrom(buffer.asSlice(0, VfioUserHeader.ENCODED_LENGTH));
                buffer = grown;
            }
            if (size > VfioUserHeader.ENCODED_LENGTH) {
                if (bodyTimeoutMillis > 0) {
                    channel.setReadTimeoutMillis(bodyTimeoutMillis);
                }
                try {
                    channel.readFully(buffer.asSlice(VfioUserHeader.ENCODED_LENGTH, size - VfioUserHeader.ENCODED_LENGTH));
                } catch (ReadTimeoutException e) {
                    throw new TransportException("the peer sent " + (VfioUserHeader.ENCODED_LENGTH + e.receivedBytes()) + " of a "
                            + size + "-byte message (command " + header.command() + ") and fell silent for " + bodyTimeoutMillis
                            + " ms (message timeout)", e);
                } finally {
                    if (bodyTimeoutMillis > 0 && channel.isOpen()) {
                        channel.setReadTimeoutMillis(0);
                    }
                }
            }
            return new Received(buffer.asSlice(0, size), fds, fds.dropped());
        } catch (IOException | RuntimeException e) {
            fds.close();
            throw e;
        }
    }

    /**
     * Sends a whole message.
     *
     * @param message header and payload
     * @param fds fds to pass (they stay owned by the caller)
     * @throws IOException on transport failures
     */
    public void send(MemorySegment message, List<OwnedFd> fds) throws IOException {
        channel.write(message, fds);
    }

    /**
     * Sends a whole message without fds.
     *
     * @param message header and payload
     * @throws IOException on transport failures
     */
    public void send(MemorySegment message) throws IOException {
        channel.write(message);
    }

    /**
     * Sends an error reply: the header alone with Error and the errno.
     *
     * @param msgId the id of the command answered
     * @param command the command number answered
     * @param errno the errno
     * @throws IOException on transport failures
     */
    public void sendError(int msgId, int command, int errno) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment m = a.allocate(VfioUserHeader.ENCODED_LENGTH);
            new VfioUserHeader.Encoder().wrap(m, 0).errorReply(msgId, command, errno);
            channel.write(m);
        }
    }

    /** {@return the underlying socket} */
    public MessageChannel channel() {
        return channel;
    }

    /** {@return whether the socket is open} */
    public boolean isOpen() {
        return channel.isOpen();
    }

    /** Closes the socket (waking a blocked receiver) and frees the buffer once no receive is running. */
    @Override
    public void close() {
        channel.close();
    }

    /** Frees the receive buffer; call from the receiving thread after it stopped. */
    public void release() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    /** A header that failed the syntax layer, with a copy of the header so the caller can answer it. */
    public static final class HeaderException extends dev.outproc.vfio.message.VfioUserProtocolException {
        private static final long serialVersionUID = 1L;
        private final transient MemorySegment header;

        HeaderException(dev.outproc.vfio.message.VfioUserProtocolException cause, MemorySegment header) {
            super(cause.errno(), cause.getMessage());
            this.header = header;
        }

        /** {@return a copy of the offending header} */
        public MemorySegment header() {
            return header;
        }
    }
}
