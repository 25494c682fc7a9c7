package dev.outproc.migration.handshake;

import dev.outproc.migration.integrity.SigningKey;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.internal.Crypto;
import dev.outproc.migration.internal.Le;
import dev.outproc.migration.model.Implementation;
import dev.outproc.migration.model.Registry;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.List;
import java.util.Set;
import org.bouncycastle.crypto.agreement.X25519Agreement;
import org.bouncycastle.crypto.params.X25519PrivateKeyParameters;
import org.bouncycastle.crypto.params.X25519PublicKeyParameters;

/**
 * The handshake that runs before any state moves: the source offers, the destination accepts or refuses with
 * reasons, and both end with the same {@link HandshakeAgreement}. Messages are plain bytes, so any channel can carry
 * them (a management connection, or a vhost-user front-end relaying between two back-ends).
 *
 * {@snippet :
 * // source
 * MigrationSession.Source src = MigrationSession.source(sourceDescriptor, registry, true, random);
 * byte[] offer = src.offer();                        // -> destination
 * // destination
 * MigrationSession.Destination dst = MigrationSession.destination(destinationDescriptor, checker, true, random);
 * MigrationSession.Answer answer = dst.answer(offer); // -> source, accepted or not
 * // source
 * HandshakeAgreement a = src.complete(answer.bytes()); // throws MigrationRefusedException with reasons
 * try (DeviceStateWriter w = DeviceStateWriter.open(channel, a)) { ... w.finish(); }
 * // destination
 * try (DeviceStateReader r = DeviceStateReader.open(channel, answer.agreement())) { ... r.finish(); }
 * }
 *
 * <h2 id="mac">MAC key</h2>
 * When the source asks for a MAC, both sides send an ephemeral X25519 public key and derive the MAC key as
 * HKDF-SHA256(X25519 shared secret, salt = handshake hash, info = "outproc-migration-mac-key-v1"). The key never
 * travels, so a relay that sees the handshake cannot forge a stream; an active relay that replaces keys can, so
 * deployments that distrust the relay also sign the trailer ({@link Source#signWith}) and pin the signer.
 */
public final class MigrationSession {
    private static final byte[] HASH_LABEL = "outproc-migration-handshake-v1".getBytes(StandardCharsets.US_ASCII);

    private MigrationSession() {}

    /**
     * Starts the source side.
     *
     * @param local the source's descriptor
     * @param registry the source's registry; the offer carries the digest of its model entry (empty if unknown)
     * @param wantMac whether the stream must carry a MAC keyed by the handshake
     * @param random randomness for the nonce and key agreement
     * @return the source session
     */
    public static Source source(DeviceDescriptor local, Registry registry, boolean wantMac, SecureRandom random) {
        return new Source(local, registry, wantMac, random);
    }

    /**
     * Starts the destination side.
     *
     * @param local the destination's descriptor
     * @param checker the destination's compatibility checker (its registry and trust)
     * @param requireMac whether offers without MAC key material are refused
     * @param random randomness for the key agreement
     * @return the destination session
     */
    public static Destination destination(DeviceDescriptor local, CompatibilityChecker checker, boolean requireMac, SecureRandom random) {
        return new Destination(local, checker, requireMac, random);
    }

    static byte[] handshakeHash(byte[] offer, byte[] answer) {
        byte[] lo = new byte[4];
        byte[] la = new byte[4];
        Le.put32(lo, 0, offer.length);
        Le.put32(la, 0, answer.length);
        return Crypto.sha256(HASH_LABEL, lo, offer, la, answer);
    }

    static byte[] macKey(X25519PrivateKeyParameters mine, byte[] theirs, byte[] hash) throws HandshakeException {
        byte[] shared = new byte[32];
        try {
            X25519Agreement agreement = new X25519Agreement();
            agreement.init(mine);
            agreement.calculateAgreement(new X25519PublicKeyParameters(theirs, 0), shared, 0);
        } catch (IllegalStateException | IllegalArgumentException e) {
            throw new HandshakeException("X25519 key agreement failed (low-order public key " + Le.hex(theirs) + ")", e);
        }
        return Crypto.hkdf(shared, hash, Crypto.MAC_KEY_INFO, 32);
    }

    /** The source side of a handshake. */
    public static final class Source {
        private final DeviceDescriptor local;
        private final byte[] nonce = new byte[32];
        private final X25519PrivateKeyParameters keyAgreement;
        private final byte[] offer;
        private SigningKey signingKey;

        private Source(DeviceDescriptor local, Registry registry, boolean wantMac, SecureRandom random) {
            this.local = local;
            random.nextBytes(nonce);
            this.keyAgreement = wantMac ? new X25519PrivateKeyParameters(random) : null;
            byte[] digest = registry.model(local.modelId()).map(Registry::modelDigest).orElse(new byte[0]);
            this.offer = HandshakeCodec.encode(new MigrationOffer(local, nonce, digest,
                    wantMac ? keyAgreement.generatePublicKey().getEncoded() : new byte[0]));
        }

        /**
         * Signs the stream trailer with a key (the destination may require it).
         *
         * @param key signing key
         * @return this
         */
        public Source signWith(SigningKey key) {
            this.signingKey = key;
            return this;
        }

        /** @return the offer message, to send to the destination */
        public byte[] offer() {
            return offer.clone();
        }

        /** @return a copy of this migration's nonce */
        public byte[] nonce() {
            return nonce.clone();
        }

        /**
         * Completes the handshake with the destination's answer.
         *
         * @param answerBytes the answer message
         * @return the agreement to open the {@code DeviceStateWriter} with
         * @throws MigrationRefusedException if the destination refused
         * @throws HandshakeException if the answer is malformed or does not belong to this offer
         */
        public HandshakeAgreement complete(byte[] answerBytes) throws HandshakeException {
            MigrationAnswer answer = HandshakeCodec.decodeAnswer(answerBytes);
            if (answer instanceof MigrationRefusal r && MessageDigest.isEqual(r.nonce(), new byte[HandshakeAgreement.NONCE_BYTES])) {
                // The destination could not decode the offer, so it could not echo the nonce: the reasons still count.
                throw new MigrationRefusedException(r.reasons());
            }
            if (!MessageDigest.isEqual(answer.nonce(), nonce)) {
                throw new HandshakeException("answer nonce " + Le.hex(answer.nonce()) + " is not this offer's " + Le.hex(nonce));
            }
            if (answer instanceof MigrationRefusal r) {
                throw new MigrationRefusedException(r.reasons());
            }
            MigrationAccept a = (MigrationAccept) answer;
            if (!local.writeVersions().contains(a.formatVersion())) {
                throw new HandshakeException("destination chose format version " + a.formatVersion() + ", the source writes " + local.writeVersions());
            }
            if (!a.modelId().equals(local.modelId()) || !a.formatClass().equals(local.formatClass())) {
                throw new HandshakeException("destination accepted " + a.modelId() + " / " + a.formatClass() + ", the source offered "
                        + local.modelId() + " / " + local.formatClass());
            }
            // The accept states what the destination will check; refuse here, before any state is sent, what we cannot give.
            if (a.requiresMac() && keyAgreement == null) {
                throw new HandshakeException("the destination requires a MAC and this source offered no X25519 key");
            }
            if (a.requiresSignature()) {
                if (signingKey == null) {
                    throw new HandshakeException("the destination requires a signed stream and this source has no signing key");
                }
                byte[] mine = signingKey.verifyingKey().encoded();
                if (!a.signers().isEmpty() && a.signers().stream().noneMatch(k -> MessageDigest.isEqual(k, mine))) {
                    throw new HandshakeException("the destination requires a stream signed by one of " + a.signers().size()
                            + " pinned key(s) and this source's key " + signingKey.verifyingKey().toBase64() + " is not one of them");
                }
            }
            byte[] hash = handshakeHash(offer, answerBytes);
            HandshakeAgreement.Builder b = HandshakeAgreement.builder(local.modelId(), local.formatClass(), a.formatVersion())
                    .nonce(nonce).handshakeHash(hash).implementationId(local.implementationId()).signWith(signingKey);
            if (keyAgreement != null) {
                if (a.keyAgreementPublicKey().length != 32) {
                    throw new HandshakeException("the source asked for a MAC but the destination sent no X25519 key");
                }
                b.macKey(macKey(keyAgreement, a.keyAgreementPublicKey(), hash));
            } else if (a.keyAgreementPublicKey().length != 0) {
                throw new HandshakeException("the destination sent an X25519 key although no MAC was asked for");
            }
            return b.build();
        }
    }

    /**
     * The destination's answer.
     *
     * @param bytes the message to send back to the source
     * @param accepted whether the migration may proceed
     * @param reasons why not, when refused
     * @param agreement the agreement to open the {@code DeviceStateReader} with, or null when refused
     */
    public record Answer(byte[] bytes, boolean accepted, List<Incompatibility> reasons, HandshakeAgreement agreement) {
        /** Canonical constructor: copies. */
        public Answer {
            bytes = bytes.clone();
            reasons = List.copyOf(reasons);
        }

        @Override
        public byte[] bytes() {
            return bytes.clone();
        }
    }

    /** The destination side of a handshake. */
    public static final class Destination {
        private final DeviceDescriptor local;
        private final CompatibilityChecker checker;
        private final boolean requireMac;
        private final SecureRandom random;
        private Set<VerifyingKey> trustedStreamSigners = Set.of();
        private boolean requireSignature;

        private Destination(DeviceDescriptor local, CompatibilityChecker checker, boolean requireMac, SecureRandom random) {
            this.local = local;
            this.checker = checker;
            this.requireMac = requireMac;
            this.random = random;
        }

        /**
         * Requires the stream trailer to be signed by one of these keys.
         *
         * @param keys trusted signers
         * @return this
         */
        public Destination requireSignatureBy(Set<VerifyingKey> keys) {
            this.trustedStreamSigners = Set.copyOf(keys);
            return this;
        }

        /**
         * Requires a signed stream trailer even when no signer is pinned or bound (the signature then proves only
         * that the stream was not changed after signing).
         *
         * @return this
         */
        public Destination requireSignature() {
            this.requireSignature = true;
            return this;
        }

        /**
         * The signers a stream from this source must use: the keys the registry binds to the source's implementation
         * (registry-format.md §3.6), narrowed to the pinned ones when both exist; the pinned ones when the registry binds
         * none. Null when pins and bound keys have nothing in common.
         */
        private Set<VerifyingKey> requiredSigners(DeviceDescriptor source) {
            List<VerifyingKey> bound = checker.registry().model(source.modelId())
                    .flatMap(m -> m.implementation(source.implementationId())).map(Implementation::signers).orElse(List.of());
            if (bound.isEmpty()) {
                return trustedStreamSigners;
            }
            if (trustedStreamSigners.isEmpty()) {
                return Set.copyOf(bound);
            }
            Set<VerifyingKey> both = new java.util.LinkedHashSet<>(bound);
            both.retainAll(trustedStreamSigners);
            return both.isEmpty() ? null : both;
        }

        /**
         * Answers an offer. A malformed offer is answered with a refusal ({@link ReasonCode#MALFORMED_OFFER}) rather
         * than an exception, so the source always learns why.
         *
         * @param offerBytes the offer message from an untrusted peer
         * @return the answer
         */
        public Answer answer(byte[] offerBytes) {
            MigrationOffer offer;
            try {
                offer = HandshakeCodec.decodeOffer(offerBytes);
            } catch (HandshakeException e) {
                List<Incompatibility> r = List.of(new Incompatibility(ReasonCode.MALFORMED_OFFER, "offer", e.getMessage()));
                return new Answer(HandshakeCodec.encode(new MigrationRefusal(new byte[32], r)), false, r, null);
            }
            List<Incompatibility> reasons = new java.util.ArrayList<>();
            CompatibilityReport report = checker.check(offer.source(), local, offer.modelDigest());
            reasons.addAll(report.reasons());
            if (requireMac && !offer.wantsMac()) {
                reasons.add(new Incompatibility(ReasonCode.MAC_REQUIRED, "offer", "the destination requires a MAC and the offer carries no X25519 key"));
            }
            if (!reasons.isEmpty()) {
                return new Answer(HandshakeCodec.encode(new MigrationRefusal(offer.nonce(), reasons)), false, reasons, null);
            }
            Set<VerifyingKey> signers = requiredSigners(offer.source());
            if (signers == null) {
                List<Incompatibility> r = List.of(new Incompatibility(ReasonCode.SIGNER_NOT_BOUND, offer.source().implementationId(),
                        "none of the destination's pinned stream signers is bound to implementation " + offer.source().implementationId()
                                + " in its registry"));
                return new Answer(HandshakeCodec.encode(new MigrationRefusal(offer.nonce(), r)), false, r, null);
            }
            boolean signature = requireSignature || !signers.isEmpty();
            X25519PrivateKeyParameters mine = offer.wantsMac() ? new X25519PrivateKeyParameters(random) : null;
            byte[] destinationNonce = new byte[HandshakeAgreement.NONCE_BYTES];
            random.nextBytes(destinationNonce);
            int requirements = (mine != null ? MigrationAccept.REQUIRE_MAC : 0) | (signature ? MigrationAccept.REQUIRE_SIGNATURE : 0);
            byte[] answerBytes = HandshakeCodec.encode(new MigrationAccept(offer.nonce(), report.chosenVersion(), local.modelId(),
                    local.formatClass(), local.implementationId(), mine == null ? new byte[0] : mine.generatePublicKey().getEncoded(),
                    destinationNonce, requirements, signers.stream().map(VerifyingKey::encoded).toList()));
            byte[] hash = handshakeHash(offerBytes, answerBytes);
            HandshakeAgreement.Builder b = HandshakeAgreement.builder(local.modelId(), local.formatClass(), report.chosenVersion())
                    .nonce(offer.nonce()).handshakeHash(hash).requireSignatureBy(signers).requireSignature(signature);
            if (mine != null) {
                try {
                    b.macKey(macKey(mine, offer.keyAgreementPublicKey(), hash));
                } catch (HandshakeException e) {
                    List<Incompatibility> r = List.of(new Incompatibility(ReasonCode.MALFORMED_OFFER, "offer", e.getMessage()));
                    return new Answer(HandshakeCodec.encode(new MigrationRefusal(offer.nonce(), r)), false, r, null);
                }
            }
            return new Answer(answerBytes, true, List.of(), b.build());
        }
    }
}
