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
 */
public record ServerOptions(int maxMsgFds, long maxDataXferSize, long maxDmaMaps, long maxDmaWindowBytes,
                            DmaAccessLayout dmaLayout, long dmaReplyTimeoutMillis, int messageTimeoutMillis) {
    /** Defaults: 16 fds, 1 MiB transfers, 1024 windows of at most 1 TiB, the specification's DMA layout, 5 s, 5 s. */
    public static final ServerOptions DEFAULTS = new ServerOptions(16, 1 << 20, 1024, 1L << 40, DmaAccessLayout.SPEC, 5000, 5000);

    /**
     * These options with another DMA layout.
     *
     * @param layout the layout
     * @return the options
     */
    public ServerOptions withDmaLayout(DmaAccessLayout layout) {
        return new ServerOptions(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, layout, dmaReplyTimeoutMillis,
                messageTimeoutMillis);
    }

    /**
     * These options with another message timeout.
     *
     * @param millis the timeout
     * @return the options
     */
    public ServerOptions withMessageTimeoutMillis(int millis) {
        return new ServerOptions(maxMsgFds, maxDataXferSize, maxDmaMaps, maxDmaWindowBytes, dmaLayout, dmaReplyTimeoutMillis, millis);
    }

    /** {@return the largest message accepted: a REGION_WRITE or MIG_DATA_WRITE of the largest transfer} */
    public long maxMessageBytes() {
        return Math.max(16 + 16 + maxDataXferSize, 64 * 1024);
    }
}
