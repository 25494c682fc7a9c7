package dev.outproc.migration.handshake;

/**
 * One structured reason for refusing a migration.
 *
 * @param code what kind of problem
 * @param subject what it concerns (a parameter, constraint, model or format class)
 * @param detail the values involved, in words
 */
public record Incompatibility(ReasonCode code, String subject, String detail) {
    @Override
    public String toString() {
        return code + " " + subject + ": " + detail;
    }
}
