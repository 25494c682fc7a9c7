package dev.outproc.vfio.server;

import dev.outproc.vfio.message.DmaAccessLayout;

/**
 * Limits and choices of a {@link VfioUserServer}.
 *
 * @param maxMsgFds the most fds accepted in one message ({@code max_msg_fds} offered)
 * @param maxDataXferSize the largest data transfer accepted ({@code max_data_xfer_size} offered)
 * @param maxDmaMaps the most DMA windows at once ({@code max_dma_maps} offered)
 * @param maxDmaWindowBytes the largest DMA window accepted
 * @param dmaLayout the DMA_READ/WRITE layout the client uses ({@link DmaAccessLayout#QEMU} for QEMU 10.x)
 * @param dmaReplyTimeoutMillis how long a device waits for the client's DMA_READ/WRITE reply
 * @param messageTimeoutMillis how long the rest of a message may take once its header arrived (a client
 *        that sends part of a message and falls silent loses the connection)
 * @param sendTimeoutMillis how long one reply or server command may wait for the client to make room in
 *        the socket (a client that sends commands and never reads the replies loses the connection); 0 waits
 *        forever
 * @param twinSocket whether to enable twin-socket mode when the client proposes it ({@code twin_socket}:
 *        the server's DMA_READ/WRITE commands and their replies then travel on a socket of their own)
 */
public record ServerOptions(int maxMsgFds, long maxDataXferSize, long maxDmaMaps, long maxDmaWindowBytes,
                            DmaAccessLayout dmaLayout, long dmaReplyTimeoutMillis, int messageTimeoutMillis,
                            int sendTimeoutMillis, boolean twinSocket) {
    /**
     * Defaults: 16 fds, 1 MiB transfers, 1024 windows of at most 1 TiB, the specification's DMA layout, 5 s
     * for a DMA reply, 5 s for the rest of a message, 5 s for a send, twin socket when proposed.
     */
    public static final ServerOptions DEFAULTS = new ServerOptions(16, 1 << 20, 1024, 1L << 40, DmaAccessLayout.SPEC, 5000, 5000,
            5000, true);

    /** Checks the values. */
    public ServerOptions {
        if (messageTimeoutMillis < 0 || sendTimeoutMillis < 0 || dmaReplyTimeoutMillis < 0) {
            throw new IllegalArgumentException("timeouts must not be negative, message=" + messageTimeoutMillis + " send="
                    + sendTimeoutMillis + " dmaReply=" + dmaReplyTimeoutMillis);
        }
    }

    /**
     * Options with the default send timeout and twin socket enabled.
     *
     * @param maxMsgFds see the record
     * @param maxDataXferSize see the record
     * @param maxDmaMaps see the record
     * @param maxDmaWindowBytes see the record
     * @param dmaLayout see the record
     * @param dmaReplyTimeoutMillis see the record
     * @param messageTimeoutMillis see the record
     */
    public ServerOptions(int maxMsgFds, long maxDataXferSize, long maxDmaMaps, long maxDmaWindowBytes, DmaAccessLayout dmaLayout,
                         long dmaReplyTimeoutMillis, int messageTimeoutMillis) {
        this(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, dmaLayout, dmaReplyTimeoutMillis, messageTimeoutMillis,
                DEFAULTS_SEND_TIMEOUT_MILLIS, true);
    }

    private static final int DEFAULTS_SEND_TIMEOUT_MILLIS = 5000;

    /**
     * These options with another DMA layout.
     *
     * @param layout the layout
     * @return the options
     */
    public ServerOptions withDmaLayout(DmaAccessLayout layout) {
        return new ServerOptions(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, layout, dmaReplyTimeoutMillis,
                messageTimeoutMillis, sendTimeoutMillis, twinSocket);
    }

    /**
     * These options with another message timeout.
     *
     * @param millis the timeout
     * @return the options
     */
    public ServerOptions withMessageTimeoutMillis(int millis) {
        return new ServerOptions(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, dmaLayout, dmaReplyTimeoutMillis, millis,
                sendTimeoutMillis, twinSocket);
    }

    /**
     * These options with another send timeout.
     *
     * @param millis the timeout, 0 to wait forever
     * @return the options
     */
    public ServerOptions withSendTimeoutMillis(int millis) {
        return new ServerOptions(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, dmaLayout, dmaReplyTimeoutMillis,
                messageTimeoutMillis, millis, twinSocket);
    }

    /**
     * These options with twin-socket mode allowed or not.
     *
     * @param enabled whether to enable it when the client proposes it
     * @return the options
     */
    public ServerOptions withTwinSocket(boolean enabled) {
        return new ServerOptions(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, dmaLayout, dmaReplyTimeoutMillis,
                messageTimeoutMillis, sendTimeoutMillis, enabled);
    }

    /** {@return the largest message accepted: a REGION_WRITE or MIG_DATA_WRITE of the largest transfer} */
    public long maxMessageBytes() {
        return Math.max(16 + 16 + maxDataXferSize, 64 * 1024);
    }
}
