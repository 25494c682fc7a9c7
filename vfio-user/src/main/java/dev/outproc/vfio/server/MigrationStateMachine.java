package dev.outproc.vfio.server;

import dev.outproc.core.fd.Errno;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.VfioUserProtocolException;

import static dev.outproc.vfio.server.MigrationState.ERROR;
import static dev.outproc.vfio.server.MigrationState.PRE_COPY;
import static dev.outproc.vfio.server.MigrationState.PRE_COPY_P2P;
import static dev.outproc.vfio.server.MigrationState.RESUMING;
import static dev.outproc.vfio.server.MigrationState.RUNNING;
import static dev.outproc.vfio.server.MigrationState.RUNNING_P2P;
import static dev.outproc.vfio.server.MigrationState.STOP;
import static dev.outproc.vfio.server.MigrationState.STOP_COPY;

/**
 * The migration v2 state machine: which direct arc leads from one state towards another, the kernel's
 * {@code vfio_mig_get_next_state()} table (drivers/vfio/vfio_main.c), with states the device does not
 * support skipped the same way (P2P states without {@code VFIO_MIGRATION_P2P}, PRE_COPY states without
 * {@code VFIO_MIGRATION_PRE_COPY}). Saving-group states are never interior to a path; {@code STOP_COPY ->
 * PRE_COPY} and any path out of ERROR are refused.
 */
public final class MigrationStateMachine {
    private static final MigrationState[][] NEXT = new MigrationState[8][8];

    static {
        row(STOP, STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P);
        row(RUNNING, RUNNING_P2P, RUNNING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, PRE_COPY, RUNNING_P2P);
        row(STOP_COPY, STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR);
        row(RESUMING, STOP, STOP, STOP, RESUMING, STOP, ERROR, ERROR);
        row(RUNNING_P2P, STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P);
        row(PRE_COPY, RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P);
        row(PRE_COPY_P2P, RUNNING_P2P, RUNNING_P2P, STOP_COPY, RUNNING_P2P, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P);
        for (int to = 0; to < 8; to++) {
            NEXT[ERROR.ordinal()][to] = ERROR;
        }
        for (int from = 0; from < 8; from++) {
            NEXT[from][ERROR.ordinal()] = ERROR;
        }
    }

    /** Targets in the order STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P. */
    private static void row(MigrationState from, MigrationState... next) {
        MigrationState[] targets = {STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P};
        for (int k = 0; k < targets.length; k++) {
            NEXT[from.ordinal()][targets[k].ordinal()] = next[k];
        }
    }

    private MigrationStateMachine() {
    }

    /**
     * Whether a device with these migration flags supports a state.
     *
     * @param state the state
     * @param flags the {@link MigrationFeature} flags
     * @return whether supported
     */
    public static boolean supports(MigrationState state, long flags) {
        long needed = switch (state) {
            case ERROR -> 0;
            case STOP, RUNNING, STOP_COPY, RESUMING -> MigrationFeature.STOP_COPY;
            case RUNNING_P2P -> MigrationFeature.STOP_COPY | MigrationFeature.P2P;
            case PRE_COPY -> MigrationFeature.STOP_COPY | MigrationFeature.PRE_COPY;
            case PRE_COPY_P2P -> MigrationFeature.STOP_COPY | MigrationFeature.P2P | MigrationFeature.PRE_COPY;
        };
        return (flags & needed) == needed;
    }

    /**
     * The next direct arc's target on the way from {@code from} to {@code to}.
     *
     * @param from the current state
     * @param to the requested state
     * @param flags the device's migration flags
     * @return the next state ({@code to} itself when the arc is direct)
     * @throws VfioUserProtocolException EINVAL when {@code to} is ERROR or unsupported, or no path exists
     */
    public static MigrationState next(MigrationState from, MigrationState to, long flags) throws VfioUserProtocolException {
        if (to == ERROR || !supports(to, flags)) {
            throw new VfioUserProtocolException(Errno.EINVAL, "migration state " + to + " cannot be requested, flags=0x"
                    + Long.toHexString(flags));
        }
        MigrationState next = NEXT[from.ordinal()][to.ordinal()];
        while (next != ERROR && !supports(next, flags)) {
            next = NEXT[next.ordinal()][to.ordinal()];
        }
        if (next == ERROR) {
            throw new VfioUserProtocolException(Errno.EINVAL, "no migration arc from " + from + " to " + to);
        }
        return next;
    }
}
