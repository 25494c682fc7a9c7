package dev.outproc.migration.handshake;

import java.util.List;

/** The destination refused the migration; {@link #reasons()} says why. No state was sent. */
public class MigrationRefusedException extends HandshakeException {
    private static final long serialVersionUID = 1L;

    private final transient List<Incompatibility> reasons;

    /**
     * Creates the exception.
     *
     * @param reasons the destination's reasons
     */
    public MigrationRefusedException(List<Incompatibility> reasons) {
        super("destination refused the migration: " + reasons);
        this.reasons = List.copyOf(reasons);
    }

    /** @return the destination's reasons */
    public List<Incompatibility> reasons() {
        return reasons;
    }
}
