package dev.outproc.migration.handshake;

import java.util.List;

/**
 * The destination refuses, with structured reasons.
 *
 * @param nonce the offer's nonce (zero if the offer could not be decoded)
 * @param reasons why
 */
public record MigrationRefusal(byte[] nonce, List<Incompatibility> reasons) implements MigrationAnswer {
    /** Canonical constructor: copies the array and list. */
    public MigrationRefusal {
        nonce = nonce.clone();
        reasons = List.copyOf(reasons);
    }

    @Override
    public byte[] nonce() {
        return nonce.clone();
    }
}
