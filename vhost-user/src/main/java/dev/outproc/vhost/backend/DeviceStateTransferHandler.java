package dev.outproc.vhost.backend;

import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vhost.message.DeviceStateTransfer;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.ProtocolFeature;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static java.lang.System.Logger.Level.DEBUG;
import static java.lang.System.Logger.Level.WARNING;

/**
 * The device-state handler (DEVICE_STATE): SET_DEVICE_STATE_FD starts a save or load of the device's
 * state through the front-end's pipe on a thread of its own, and CHECK_DEVICE_STATE waits for its end
 * and reports it. Only a migratable device is offered the feature.
 */
final class DeviceStateTransferHandler implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());
    /** Bit 8 of the SET_DEVICE_STATE_FD reply: no fd of the back-end's own is returned. */
    private static final long NO_FD = 1L << 8;

    private final Session session;
    private CompletableFuture<Void> transfer;
    private FdChannel stream;

    DeviceStateTransferHandler(Session session) {
        this.session = session;
    }

    /** SET_DEVICE_STATE_FD; replies itself. */
    void setFd(DeviceStateTransfer.Decoder payload, ReceivedFds fds) throws IOException {
        FrontendRequest r = FrontendRequest.SET_DEVICE_STATE_FD;
        session.require(ProtocolFeature.DEVICE_STATE, r);
        boolean save = payload.direction() == 0;
        OwnedFd fd = fds.take(0);
        for (Vring v : session.vrings()) {
            if (v.isStarted()) {
                fd.close();
                throw new BackendException(BackendException.INVALID, "SET_DEVICE_STATE_FD while ring " + v.index()
                        + " is started");
            }
        }
        if (transfer != null && !transfer.isDone()) {
            fd.close();
            throw new BackendException(BackendException.INVALID, "a device-state transfer is already running");
        }
        FdChannel channel = FdChannel.of(fd);
        CompletableFuture<Void> task = new CompletableFuture<>();
        transfer = task;
        stream = channel;
        VhostUserDevice device = session.device();
        LOG.log(DEBUG, "device-state {0} started", save ? "save" : "load");
        Thread.ofPlatform().daemon(true).name("vhost-user-device-state").start(() -> {
            try (channel) {
                if (save) {
                    device.saveState(channel);
                } else {
                    device.loadState(channel);
                }
                task.complete(null);
            } catch (Throwable t) {
                LOG.log(WARNING, "device-state " + (save ? "save" : "load") + " failed", t);
                task.completeExceptionally(t);
            }
        });
        // Bits 0-7: 0 = success; bit 8: no fd of our own is returned (we use the front-end's).
        session.replyU64(r, NO_FD);
    }

    /** CHECK_DEVICE_STATE; replies itself: 0 when the transfer succeeded. */
    void check() throws IOException {
        session.require(ProtocolFeature.DEVICE_STATE, FrontendRequest.CHECK_DEVICE_STATE);
        long result;
        if (transfer == null) {
            result = BackendException.INVALID;
        } else {
            try {
                transfer.get(60, TimeUnit.SECONDS);
                result = 0;
            } catch (Exception e) {
                result = BackendException.IO_ERROR;
            }
            transfer = null;
        }
        LOG.log(DEBUG, "device-state transfer checked: {0}", result);
        session.replyU64(FrontendRequest.CHECK_DEVICE_STATE, result);
    }

    /** Ends a transfer a vanished front-end left running, and frees its fd. */
    @Override
    public void close() {
        if (transfer != null) {
            transfer.cancel(true);
        }
        if (stream != null) {
            stream.close();
        }
    }
}
