package dev.outproc.examples.vfio;

import dev.outproc.core.fd.Errno;
import dev.outproc.vfio.message.VfioUserProtocolException;

import java.io.ByteArrayInputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.util.Arrays;

/**
 * A device-state stream on its way in: what MIG_DATA_WRITE delivered in RESUMING, up to a bound the device sets,
 * read as a whole when the client leaves RESUMING.
 */
final class IncomingState {
    private final long maxBytes;
    private byte[] bytes = new byte[0];
    private int received;

    /**
     * Creates an empty stream.
     *
     * @param maxBytes the longest stream accepted (at most {@link Integer#MAX_VALUE} bytes are held)
     */
    IncomingState(long maxBytes) {
        this.maxBytes = Math.min(maxBytes, Integer.MAX_VALUE - 8);
    }

    /**
     * Appends a MIG_DATA_WRITE's bytes.
     *
     * @param source the bytes
     * @throws VfioUserProtocolException E2BIG when the stream would pass the bound
     */
    void append(MemorySegment source) throws VfioUserProtocolException {
        long size = source.byteSize();
        if (received + size > maxBytes) {
            throw new VfioUserProtocolException(Errno.E2BIG, "device state of more than " + maxBytes + " bytes: "
                    + (received + size));
        }
        if (received + size > bytes.length) {
            bytes = Arrays.copyOf(bytes, (int) Math.max(received + size, Math.min(maxBytes, 2L * bytes.length + 4096)));
        }
        MemorySegment.copy(source, ValueLayout.JAVA_BYTE, 0, bytes, received, (int) size);
        received += (int) size;
    }

    /** {@return the bytes received so far, as a channel to read the stream from} */
    ReadableByteChannel channel() {
        return Channels.newChannel(new ByteArrayInputStream(bytes, 0, received));
    }

    /** Forgets the bytes received. */
    void clear() {
        bytes = new byte[0];
        received = 0;
    }
}
