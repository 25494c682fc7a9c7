package dev.outproc.examples.blk;

import dev.outproc.core.fd.FdChannel;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.virtqueue.QueueConfig;
import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.model.Registry;
import dev.outproc.vhost.frontend.FrontendException;
import dev.outproc.vhost.frontend.FrontendQueue;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;

/**
 * Moves a running virtio-blk device from one vhost-user back-end to another, the way a VMM does during
 * live migration, with outproc's migration handshake first:
 * <ol>
 *   <li>handshake: the source offers its model, parameters and format versions; the destination checks
 *       them against the registry and accepts (with the format version and a MAC key) or refuses with
 *       reasons. A refusal ends here: no state has moved.</li>
 *   <li>stop the source's ring (GET_VRING_BASE), save its state (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE);</li>
 *   <li>connect to the destination with the same features, share the same guest memory, load the state
 *       (it is verified before the device uses it), start the ring where the source stopped, with the
 *       driver's own kick and call eventfds;</li>
 *   <li>the driver goes on as if nothing happened.</li>
 * </ol>
 * The driver must have no request in flight when {@link #migrate} is called.
 */
public final class BlkLiveMigration {
    /** What a migration did. */
    public record Outcome(boolean accepted, List<Incompatibility> reasons, HandshakeAgreement agreement, byte[] stream,
                          VhostUserFrontend frontend, long vringBase) {
    }

    private final Registry registry;
    private final SecureRandom random = new SecureRandom();

    /**
     * Creates a migrator over a registry of device models.
     *
     * @param registry the models both sides are checked against
     */
    public BlkLiveMigration(Registry registry) {
        this.registry = registry;
    }

    /**
     * Runs the handshake only (what a management tool does before it commits to a migration).
     *
     * @param source the source device and its identity
     * @param destination the destination device and its identity
     * @return the destination's answer; when accepted, both devices hold their agreement
     * @throws IOException when the handshake messages are malformed
     */
    public Outcome handshake(Endpoint source, Endpoint destination) throws IOException {
        MigrationSession.Source src = MigrationSession.source(source.device().descriptor(source.implementationId(),
                source.backing()), registry, true, random);
        MigrationSession.Destination dst = MigrationSession.destination(destination.device().descriptor(
                destination.implementationId(), destination.backing()), new CompatibilityChecker(registry), true, random);
        MigrationSession.Answer answer = dst.answer(src.offer());
        if (!answer.accepted()) {
            return new Outcome(false, answer.reasons(), null, null, null, -1);
        }
        HandshakeAgreement sourceAgreement = src.complete(answer.bytes());
        source.device().migrationAgreed(sourceAgreement);
        destination.device().migrationAgreed(answer.agreement());
        return new Outcome(true, List.of(), sourceAgreement, null, null, -1);
    }

    /**
     * A back-end taking part in a migration.
     *
     * @param device the device
     * @param implementationId its implementation id in the registry
     * @param backing its host-side store, for the descriptor
     * @param socket where its server listens
     */
    public record Endpoint(VirtioBlkDevice device, String implementationId, String backing, Path socket) {
    }

    /**
     * Migrates the device behind {@code current} to {@code destination}.
     *
     * @param driver the running driver (its ring, memory and eventfds move along)
     * @param current the front-end connected to the source
     * @param source the source
     * @param destination the destination
     * @param copyDisk copies the disk contents from source to destination (the management layer's job;
     *        disk data is not device state)
     * @return the outcome; when accepted, {@link Outcome#frontend()} is connected to the destination and the
     *         source's connection is closed
     * @throws IOException when a step fails after the handshake accepted
     */
    public Outcome migrate(VirtioBlkDriver driver, VhostUserFrontend current, Endpoint source, Endpoint destination,
                           IoStep copyDisk) throws IOException {
        if (driver.busySlots() != 0) {
            throw new IllegalStateException("the driver has " + driver.busySlots() + " requests in flight");
        }
        Outcome handshake = handshake(source, destination);
        if (!handshake.accepted()) {
            return handshake;
        }
        FrontendQueue ring = driver.queue();
        // 1. Stop the source's ring: it returns where the device stopped.
        long base = current.getVringBase(0);
        // 2. Save the source's state through a pipe.
        byte[] stream = transfer(current, true, null);
        // 3. The disk follows (the management layer's copy); then the destination takes over.
        copyDisk.run();
        VhostUserFrontend next = VhostUserFrontend.connect(destination.socket());
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
        return new Outcome(true, List.of(), handshake.agreement(), stream, next, base);
    }

    /** Saves ({@code save}) the device's state into a byte array, or loads {@code stream} into it. */
    private static byte[] transfer(VhostUserFrontend fe, boolean save, byte[] stream) throws IOException {
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

    /** A step that may fail with an I/O error. */
    @FunctionalInterface
    public interface IoStep {
        /**
         * Runs the step.
         *
         * @throws IOException on failure
         */
        void run() throws IOException;
    }
}
