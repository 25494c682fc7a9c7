package dev.outproc.examples.blk;

import dev.outproc.examples.migration.StateTransfer;
import dev.outproc.migration.handshake.CompatibilityChecker;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.Incompatibility;
import dev.outproc.migration.handshake.MigrationSession;
import dev.outproc.migration.model.Registry;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;

import java.io.IOException;
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
                           StateTransfer.IoStep copyDisk) throws IOException {
        if (driver.busySlots() != 0) {
            throw new IllegalStateException("the driver has " + driver.busySlots() + " requests in flight");
        }
        Outcome handshake = handshake(source, destination);
        if (!handshake.accepted()) {
            return handshake;
        }
        StateTransfer.Outcome moved = StateTransfer.move(driver, current, destination.socket(), copyDisk);
        return new Outcome(true, List.of(), handshake.agreement(), moved.stream(), moved.frontend(), moved.vringBase());
    }

}
