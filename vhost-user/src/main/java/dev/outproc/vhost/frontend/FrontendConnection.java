package dev.outproc.vhost.frontend;

import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VhostUserFeature;

import java.io.IOException;
import java.util.List;

/**
 * The layer of {@link VhostUserFrontend} that owns the connection and what is negotiated on it: the request
 * channel with its REPLY_ACK policy, the virtio and protocol features, SET_OWNER and RESET_DEVICE, the queue
 * and memory slot counts, the device status, and raw access for tests that play a hostile front-end.
 *
 * <p>Its public methods are part of {@link VhostUserFrontend}'s API and are documented there (Javadoc lists
 * the public members of a package-private superclass with the public class). The requests that use the
 * negotiated state (memory table, rings, IOTLB, configuration, inflight and device state, the back-end
 * channel) are the facade's, in a file of their own.
 */
abstract sealed class FrontendConnection permits VhostUserFrontend {
    /** The request channel every request group shares. */
    final RequestChannel io;
    private long features;
    private long protocolFeatures;

    FrontendConnection(MessageChannel channel) {
        this.io = new RequestChannel(channel);
    }

    /**
     * Sets how long to wait for any reply; 0 waits forever.
     *
     * @param timeoutMillis the timeout
     * @throws IOException when the socket refuses the option
     */
    public void setReplyTimeoutMillis(int timeoutMillis) throws IOException {
        io.channel().setReadTimeoutMillis(timeoutMillis);
    }

    /** {@return the virtio features acknowledged with {@link #setFeatures}} */
    public long features() {
        return features;
    }

    /** {@return the protocol features acknowledged with {@link #setProtocolFeatures}} */
    public long protocolFeatures() {
        return protocolFeatures;
    }

    /**
     * {@return whether a protocol feature was acknowledged}
     *
     * @param feature the feature
     */
    public boolean has(ProtocolFeature feature) {
        return (protocolFeatures & feature.mask()) != 0;
    }

    // ---- negotiation ----

    /**
     * {@return the back-end's virtio features (GET_FEATURES)}
     *
     * @throws IOException when the request fails (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public long getFeatures() throws IOException {
        return io.callU64(FrontendRequest.GET_FEATURES);
    }

    /**
     * Acknowledges virtio features (SET_FEATURES).
     *
     * @param value the features
     * @throws IOException when the request fails or is refused (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public void setFeatures(long value) throws IOException {
        io.sendU64(FrontendRequest.SET_FEATURES, value);
        features = value;
    }

    /**
     * {@return the back-end's protocol features (GET_PROTOCOL_FEATURES)}
     *
     * @throws IOException when the request fails (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public long getProtocolFeatures() throws IOException {
        return io.callU64(FrontendRequest.GET_PROTOCOL_FEATURES);
    }

    /**
     * Acknowledges protocol features (SET_PROTOCOL_FEATURES); REPLY_ACK, when acknowledged, applies from the
     * next request on.
     *
     * @param value the features
     * @throws IOException when the request fails (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public void setProtocolFeatures(long value) throws IOException {
        io.encodeU64(value);
        io.sendWithoutAck(FrontendRequest.SET_PROTOCOL_FEATURES, U64Payload.ENCODED_LENGTH);
        protocolFeatures = value;
        io.replyAck(has(ProtocolFeature.REPLY_ACK));
    }

    /**
     * The usual opening: GET_FEATURES, SET_OWNER, then the protocol features (when the back-end offers
     * F_PROTOCOL_FEATURES) and the virtio features, each the intersection of what is wanted and offered.
     *
     * @param wantedFeatures virtio features to use (F_PROTOCOL_FEATURES is added when offered)
     * @param wantedProtocolFeatures protocol features to use
     * @return the virtio features acknowledged
     * @throws IOException when a request fails or is refused (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public long negotiate(long wantedFeatures, long wantedProtocolFeatures) throws IOException {
        long offered = getFeatures();
        setOwner();
        long protocolBit = VhostUserFeature.PROTOCOL_FEATURES.mask();
        if ((offered & protocolBit) != 0) {
            setProtocolFeatures(getProtocolFeatures() & wantedProtocolFeatures);
        }
        long acked = offered & (wantedFeatures | protocolBit);
        setFeatures(acked);
        return acked;
    }

    /**
     * Sends SET_OWNER.
     *
     * @throws IOException when the request fails or is refused (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public void setOwner() throws IOException {
        io.send(FrontendRequest.SET_OWNER, 0, List.of());
    }

    /**
     * Sends RESET_DEVICE.
     *
     * @throws IOException when the request fails or is refused (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public void resetDevice() throws IOException {
        io.send(FrontendRequest.RESET_DEVICE, 0, List.of());
    }

    /**
     * {@return the back-end's queue count (GET_QUEUE_NUM, MQ)}
     *
     * @throws IOException when the request fails (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public int getQueueNum() throws IOException {
        return (int) io.callU64(FrontendRequest.GET_QUEUE_NUM);
    }

    /**
     * {@return the back-end's memory slot count (GET_MAX_MEM_SLOTS, CONFIGURE_MEM_SLOTS)}
     *
     * @throws IOException when the request fails (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public int getMaxMemSlots() throws IOException {
        return (int) io.callU64(FrontendRequest.GET_MAX_MEM_SLOTS);
    }

    /**
     * Sends SET_STATUS.
     *
     * @param status the virtio status byte
     * @throws IOException when the request fails or is refused (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public void setStatus(int status) throws IOException {
        io.sendU64(FrontendRequest.SET_STATUS, status);
    }

    /**
     * {@return the status (GET_STATUS)}
     *
     * @throws IOException when the request fails (see {@linkplain VhostUserFrontend##errors Errors})
     */
    public int getStatus() throws IOException {
        return (int) io.callU64(FrontendRequest.GET_STATUS);
    }

    /** {@return the underlying channel (for tests that play a hostile front-end)} */
    public MessageChannel channel() {
        return io.channel();
    }

    /** {@return the message writer (for tests that send raw requests)} */
    public VhostUserMessageWriter writer() {
        return io.writer();
    }

    /** {@return the reply reader} */
    public VhostUserMessageReader reader() {
        return io.reader();
    }
}
