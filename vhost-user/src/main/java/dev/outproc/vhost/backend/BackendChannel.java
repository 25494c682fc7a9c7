package dev.outproc.vhost.backend;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.BackendRequest;
import dev.outproc.vhost.message.IotlbMsg;
import dev.outproc.vhost.message.VringState;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

import static java.lang.System.Logger.Level.DEBUG;

/**
 * The back-end channel (SET_BACKEND_REQ_FD): the socket on which this back-end sends requests to the
 * front-end (VRING_CALL for in-band notifications, IOTLB_MSG misses, CONFIG_CHANGE_MSG).
 *
 * <p>Workers never write the channel themselves: a front-end that stops reading it would block the worker,
 * and with it every control message that waits for the worker. A worker marks what it needs (allocating
 * nothing) and a sender thread writes it; calls to a ring not yet sent coalesce (VIRTIO: a notification
 * carries no count).
 */
final class BackendChannel implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());

    private final AtomicIntegerArray callPending;
    /** Per ring: an IOVA that missed, plus one (0: none). */
    private final AtomicLongArray missPending;
    private final VringState.Encoder vringState = new VringState.Encoder();
    private final IotlbMsg.Encoder iotlbMsg = new IotlbMsg.Encoder();
    private volatile MessageChannel channel;
    private volatile VhostUserMessageWriter writer;
    private volatile Thread sender;

    BackendChannel(Session session) {
        int rings = session.vrings().length;
        this.callPending = new AtomicIntegerArray(rings);
        this.missPending = new AtomicLongArray(rings);
    }

    /** SET_BACKEND_REQ_FD: adopts the socket (replacing an earlier one) and starts the sender. */
    void open(OwnedFd fd) throws IOException {
        MessageChannel old = channel;
        MessageChannel next = MessageChannel.adopt(fd);
        writer = new VhostUserMessageWriter(next);
        channel = next;
        if (old != null) {
            old.close();
        }
        if (sender == null) {
            sender = Thread.ofPlatform().daemon(true).name("vhost-user-backend-channel").start(this::sendLoop);
        }
        LOG.log(DEBUG, "back-end channel open");
    }

    /**
     * Asks for an in-band VRING_CALL; from a worker. Allocates nothing.
     *
     * @throws IOException when there is no back-end channel
     */
    void sendInbandCall(int index) throws IOException {
        Thread t = sender;
        if (t == null || writer == null) {
            throw new IOException("VRING_CALL needs the back-end channel (SET_BACKEND_REQ_FD)");
        }
        callPending.set(index, 1);
        LockSupport.unpark(t);
    }

    /** Asks for an IOTLB miss to be reported; from a worker. Returns false when there is no channel. */
    boolean requestIotlbMiss(int index, long iova) {
        Thread t = sender;
        if (t == null || writer == null) {
            return false;
        }
        missPending.set(index, iova + 1);
        LockSupport.unpark(t);
        return true;
    }

    /** A stopped ring sends nothing: drops an in-band call still waiting for the sender. */
    void dropCall(int index) {
        callPending.set(index, 0);
    }

    /** CONFIG_CHANGE_MSG, sent on the caller's thread. */
    void configChanged() throws IOException {
        VhostUserMessageWriter w = requireWriter(BackendRequest.CONFIG_CHANGE_MSG.specName());
        synchronized (w) {
            w.sendRequest(BackendRequest.CONFIG_CHANGE_MSG, false, 0, List.of());
        }
    }

    private VhostUserMessageWriter requireWriter(String what) throws IOException {
        VhostUserMessageWriter w = writer;
        if (w == null) {
            throw new IOException(what + " needs the back-end channel (SET_BACKEND_REQ_FD)");
        }
        return w;
    }

    private void sendLoop() {
        int rings = callPending.length();
        while (!Thread.currentThread().isInterrupted()) {
            boolean sent = false;
            for (int i = 0; i < rings; i++) {
                long miss = missPending.getAndSet(i, 0);
                if (miss != 0) {
                    sent = true;
                    try {
                        sendIotlbMiss(miss - 1);
                    } catch (IOException e) {
                        LOG.log(DEBUG, "IOTLB miss for ring {0} not sent: {1}", i, e.getMessage());
                    }
                }
                if (callPending.getAndSet(i, 0) != 0) {
                    sent = true;
                    try {
                        sendCall(i);
                    } catch (IOException e) {
                        LOG.log(DEBUG, "in-band call for ring {0} not sent: {1}", i, e.getMessage());
                    }
                }
            }
            if (!sent) {
                LockSupport.park(this);
            }
        }
    }

    private void sendCall(int index) throws IOException {
        VhostUserMessageWriter w = requireWriter(BackendRequest.VRING_CALL.specName());
        synchronized (w) {
            vringState.wrap(w.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).clear().index(index);
            w.sendRequest(BackendRequest.VRING_CALL, false, VringState.ENCODED_LENGTH, List.of());
        }
    }

    private void sendIotlbMiss(long iova) throws IOException {
        VhostUserMessageWriter w = requireWriter("IOTLB miss");
        synchronized (w) {
            iotlbMsg.wrap(w.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).clear()
                    .iova(iova).perm(IotlbMsg.PERM_RW).type(IotlbMsg.TYPE_MISS);
            w.sendRequest(BackendRequest.IOTLB_MSG, false, IotlbMsg.ENCODED_LENGTH, List.of());
        }
    }

    /** Wakes a sender or worker blocked writing the channel. */
    void shutdownChannel() {
        MessageChannel c = channel;
        if (c != null) {
            c.shutdown();
        }
    }

    /** Stops the sender; {@link #shutdownChannel} must come first (it wakes a blocked send). */
    void stopSender() {
        Thread t = sender;
        sender = null;
        if (t != null) {
            t.interrupt();
            try {
                t.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void close() {
        MessageChannel c = channel;
        channel = null;
        writer = null;
        if (c != null) {
            c.close();
        }
    }
}
