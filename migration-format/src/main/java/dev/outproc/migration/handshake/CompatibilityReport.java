package dev.outproc.migration.handshake;

import java.util.List;

/**
 * Result of a compatibility check.
 *
 * @param reasons incompatibilities, empty when the migration may proceed
 * @param chosenVersion highest format version the source writes and the destination reads, or 0
 */
public record CompatibilityReport(List<Incompatibility> reasons, int chosenVersion) {
    /** Canonical constructor: copies the list. */
    public CompatibilityReport {
        reasons = List.copyOf(reasons);
    }

    /** @return whether the migration may proceed */
    public boolean compatible() {
        return reasons.isEmpty();
    }
}
