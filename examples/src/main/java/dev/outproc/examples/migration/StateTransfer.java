package dev.outproc.examples.migration;

import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.FrontendQueue;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * The front-end's part of a migration once the handshake agreed (integration.md §3, §4, §7): stop the source's ring,
 * save the device state through SET_DEVICE_STATE_FD, connect to the destination with the same features and memory,
 * load the state there, and start the ring where the source stopped. The state passes through this process as bytes;
 * each back-end checks it against its own agreement. Without an agreement a back-end refuses the transfer, and this
 * method fails before the destination is touched.
 */
public final class StateTransfer {
    private StateTransfer() {}

    /**
     * What a transfer did.
     *
     * @param stream the device-state stream the source saved
     * @param frontend the connection to the destination, now serving the driver
     * @param vringBase where the source's ring stopped
     */
    public record Outcome(byte[] stream, VhostUserFrontend frontend, long vringBase) {}

    /** A step that may fail with an I/O error (the management layer's disk copy, for example). */
    @FunctionalInterface
    public interface IoStep {
        /**
         * Runs the step.
         *
         * @throws IOException on failure
         */
        void run() throws IOException;
    }

    /**
     * Moves a block device's state and its driver from one back-end to another.
     *
     * @param driver the running driver (its ring, memory and eventfds move along); no request may be in flight
     * @param current the front-end connected to the source
     * @param destination the destination back-end's vhost-user socket
     * @param copyDisk runs between save and load (disk contents are not device state)
     * @return the outcome; the source connection is closed
     * @throws IOException when a step fails; a failed save leaves the destination untouched
     */
    public static Outcome move(VirtioBlkDriver driver, VhostUserFrontend current, Path destination, IoStep copyDisk) throws IOException {
        if (driver.busySlots() != 0) {
            throw new IllegalStateException("the driver has " + driver.busySlots() + " requests in flight");
        }
        FrontendQueue ring = driver.queue();
        long base = current.getVringBase(0);
        byte[] stream = transfer(current, true, null);
        copyDisk.run();
        VhostUserFrontend next = VhostUserFrontend.connect(destination);
        try {
            long acked = next.negotiate(driver.features(), current.protocolFeatures());
            if (acked != driver.features()) {
                throw new FrontendException(0, "the destination does not offer the features the driver uses: 0x"
                        + Long.toHexString(driver.features()) + " vs 0x" + Long.toHexString(acked));
            }
            next.setMemTable(driver.memory());
            transfer(next, false, stream);
            QueueConfig c = ring.queue().config();
            next.setVringNum(0, c.size());
            next.setVringAddr(0, VhostUserFrontend.userAddr(driver.memory(), c.descAddr()),
                    VhostUserFrontend.userAddr(driver.memory(), c.deviceAddr()),
                    VhostUserFrontend.userAddr(driver.memory(), c.driverAddr()), false, c.deviceAddr());
            next.setVringBase(0, (int) base);
            next.setVringCall(0, ring.call());
            next.setVringKick(0, ring.kick());
            next.setVringEnable(0, true);
        } catch (IOException | RuntimeException e) {
            next.close();
            throw e;
        }
        current.close();
        return new Outcome(stream, next, base);
    }

    /** Saves ({@code save}) the device's state into a byte array, or loads {@code stream} into it; CHECK_DEVICE_STATE decides. */
    static byte[] transfer(VhostUserFrontend fe, boolean save, byte[] stream) throws IOException {
        OwnedFd[] pipe = FdChannel.pipe();
        OwnedFd read = pipe[0];
        OwnedFd write = pipe[1];
        byte[] result = stream;
        try (FdChannel ours = FdChannel.of(save ? read : write)) {
            try (OwnedFd theirs = save ? write : read) {
                fe.setDeviceStateFd(save, theirs);
            }
            if (save) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
                while (ours.read(buffer.clear()) >= 0) {
                    out.write(buffer.array(), 0, buffer.position());
                }
                result = out.toByteArray();
            } else {
                ours.write(ByteBuffer.wrap(stream));
            }
        }
        long check = fe.checkDeviceState();
        if (check != 0) {
            throw new FrontendException(check, "CHECK_DEVICE_STATE after " + (save ? "save" : "load") + " reported " + check);
        }
        return result;
    }
}
