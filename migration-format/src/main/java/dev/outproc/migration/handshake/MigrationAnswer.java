package dev.outproc.migration.handshake;

/** The destination's answer to an offer: {@link MigrationAccept} or {@link MigrationRefusal}. */
public sealed interface MigrationAnswer permits MigrationAccept, MigrationRefusal {
    /** @return the offer's nonce, echoed so an answer cannot be reused for another offer */
    byte[] nonce();
}
