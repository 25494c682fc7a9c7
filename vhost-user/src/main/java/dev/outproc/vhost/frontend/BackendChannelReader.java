package dev.outproc.vhost.frontend;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.BackendRequest;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.IotlbMsg;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.VringState;

import java.io.IOException;
import java.util.List;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The front-end's end of the back-end channel (SET_BACKEND_REQ_FD): reads the back-end's requests on a
 * thread of its own, hands them to a {@link VhostUserFrontend.BackendRequestHandler}, and replies when
 * asked. A handler that throws gets the back-end an EIO status, not a dead channel.
 */
final class BackendChannelReader implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserFrontend.class.getName());
    /** The status a failing handler answers with. */
    private static final long HANDLER_FAILED = Errno.EIO;

    private final MessageChannel channel;
    private final VhostUserMessageReader reader;
    private final VhostUserMessageWriter writer;
    private final VhostUserFrontend.BackendRequestHandler handler;
    private final VringState.Decoder vringState = new VringState.Decoder();
    private final IotlbMsg.Decoder iotlbMsg = new IotlbMsg.Decoder();
    private final Thread thread;

    BackendChannelReader(MessageChannel channel, VhostUserFrontend.BackendRequestHandler handler) {
        this.channel = channel;
        this.reader = new VhostUserMessageReader(channel, MessageStream.BACKEND_REQUESTS);
        this.writer = new VhostUserMessageWriter(channel);
        this.handler = handler;
        this.thread = Thread.ofPlatform().daemon(true).name("vhost-user-backend-channel").start(this::readLoop);
    }

    /**
     * Opens a back-end channel: a socket pair whose other end travels with SET_BACKEND_REQ_FD, read by a new
     * reader. The pair is closed again when the request fails.
     */
    static BackendChannelReader open(RequestChannel io, VhostUserFrontend.BackendRequestHandler handler)
            throws IOException {
        MessageChannel.Pair pair = MessageChannel.pair();
        try (OwnedFd theirs = pair.peerFd()) {
            io.send(FrontendRequest.SET_BACKEND_REQ_FD, 0, List.of(theirs));
        } catch (IOException | RuntimeException e) {
            pair.channel().close();
            throw e;
        }
        return new BackendChannelReader(pair.channel(), handler);
    }

    private void readLoop() {
        try {
            while (true) {
                try (VhostUserMessage m = reader.read()) {
                    BackendRequest r = (BackendRequest) m.request();
                    long status = 0;
                    try {
                        switch (r) {
                            case CONFIG_CHANGE_MSG -> handler.configChanged();
                            case VRING_CALL -> handler.vringCall((int) vringState.wrap(m.payload(), 0).index());
                            case IOTLB_MSG -> handler.iotlbMiss(iotlbMsg.wrap(m.payload(), 0).iova(), iotlbMsg.perm());
                            default -> LOG.log(DEBUG, "ignoring back-end request {0}", r);
                        }
                    } catch (RuntimeException e) {
                        // A failing handler must not end the channel: the back-end would wait for replies
                        // (or fill the socket) that never come.
                        LOG.log(WARNING, "back-end request handler failed on " + r, e);
                        status = HANDLER_FAILED;
                    }
                    if (m.needReply()) {
                        writer.sendReplyU64(r, status);
                    }
                }
            }
        } catch (IOException e) {
            LOG.log(DEBUG, "back-end channel closed: {0}", e.getMessage());
        }
    }

    /** Closes the channel and waits for the reading thread to end. */
    @Override
    public void close() {
        channel.close();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
