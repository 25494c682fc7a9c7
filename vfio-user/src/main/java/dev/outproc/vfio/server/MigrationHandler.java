package dev.outproc.vfio.server;

import dev.outproc.vfio.message.VfioUserProtocolException;

import java.lang.foreign.MemorySegment;

/**
 * What a migratable device provides ({@code VFIO_DEVICE_FEATURE_MIGRATION}): the arcs it supports and a
 * callback per direct arc of the migration v2 state machine, plus the data stream. The server walks
 * indirect transitions arc by arc ({@link MigrationStateMachine}) and calls {@link #arc} for each.
 *
 * <p>Saving: after {@code RUNNING -> PRE_COPY} or {@code STOP -> STOP_COPY} the device produces its state
 * through {@link #read}; returning fewer bytes than asked ends the stream for now (in PRE_COPY more may
 * come later). Resuming: after {@code STOP -> RESUMING} the bytes arrive through {@link #write}, and
 * {@code RESUMING -> STOP} must check and apply them (refuse with an exception when incomplete or invalid).
 *
 * <p>PRE_COPY ({@link dev.outproc.vfio.message.MigrationFeature#PRE_COPY} in {@link #migrationFlags()}): the
 * device keeps running while {@link #read} streams an initial part; a short read is the temporary end of the
 * stream (the kernel's {@code ENOMSG}), after which more may come while the device changes state
 * ({@link #preCopyInfo()} estimates both). {@code PRE_COPY -> STOP_COPY} continues the same stream with the
 * rest, which ends with a short read for good. The stream is one byte sequence across both states.
 */
public interface MigrationHandler {
    /** {@return the {@link dev.outproc.vfio.message.MigrationFeature} flags; STOP_COPY is mandatory} */
    long migrationFlags();

    /**
     * Performs one direct arc.
     *
     * @param from the current state
     * @param to the next state
     * @throws VfioUserProtocolException when the device refuses the arc; it must then still be in {@code from},
     *         which is where the server leaves it (an unchecked exception instead moves it to ERROR, from which
     *         only DEVICE_RESET leads out)
     */
    void arc(MigrationState from, MigrationState to) throws VfioUserProtocolException;

    /**
     * Produces state bytes in a saving state.
     *
     * @param destination where the bytes go
     * @return how many were written; fewer than asked ends the stream
     * @throws VfioUserProtocolException when the device cannot produce them
     */
    long read(MemorySegment destination) throws VfioUserProtocolException;

    /**
     * Consumes state bytes in RESUMING.
     *
     * @param source the bytes
     * @throws VfioUserProtocolException when they cannot be taken (too many, malformed)
     */
    void write(MemorySegment source) throws VfioUserProtocolException;

    /**
     * Estimates what is left to read in PRE_COPY ({@code VFIO_MIG_GET_PRECOPY_INFO}); called only while
     * the device is in PRE_COPY. A device that offers {@code VFIO_MIGRATION_PRE_COPY} should override it.
     *
     * @return the estimates; the default says nothing is left
     */
    default PreCopyInfo preCopyInfo() {
        return new PreCopyInfo(0, 0);
    }

    /**
     * Forgets any save or load in progress: the server calls it after the device's own reset on
     * VFIO_USER_DEVICE_RESET, which returns the migration state to RUNNING (as the kernel's VFIO_DEVICE_RESET
     * does), and when the client goes. Bytes not read or not applied yet are dropped; the next saving or resuming
     * state starts a new stream. A reset by the guest's driver (a virtio {@code device_status} of 0, a device
     * register) is not a function reset and does not come here: a stream in PRE_COPY carries such a change as
     * device state.
     */
    default void reset() {
    }
}
