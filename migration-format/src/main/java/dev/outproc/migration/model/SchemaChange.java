package dev.outproc.migration.model;

/**
 * One difference between two versions of a device model's schema.
 *
 * @param severity whether it breaks migration between the versions
 * @param code short stable name of the kind of change
 * @param subject what changed (parameter, section, field ...)
 * @param detail old and new values
 */
public record SchemaChange(Severity severity, String code, String subject, String detail) {
    /** How much a change matters to migration. */
    public enum Severity {
        /** Old and new can no longer migrate to each other in some configuration, or old descriptors change meaning. */
        BREAKING,
        /** A compatible addition or relaxation. */
        COMPATIBLE,
        /** Informative only. */
        INFO
    }

    @Override
    public String toString() {
        return severity + " " + code + " " + subject + ": " + detail;
    }
}
