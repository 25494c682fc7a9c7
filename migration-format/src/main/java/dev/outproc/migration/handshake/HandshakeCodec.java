package dev.outproc.migration.handshake;

import dev.outproc.migration.internal.Le;
import dev.outproc.migration.stream.ArrayReader;
import dev.outproc.migration.stream.FieldReader;
import dev.outproc.migration.stream.FieldType;
import dev.outproc.migration.stream.FieldWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Byte form of the handshake messages (spec section "Handshake messages"), so that any channel can carry them:
 * a management connection, or a vhost-user front-end relaying between two back-ends.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------------------------------------------------------+
 * |  magic 4F 50 4D 48 ("OPMH")                                   |  0
 * +---------------+---------------+-------------------------------+
 * |  version = 1  |  type 1/2/3   |  reserved = 0                 |  4
 * +---------------+---------------+-------------------------------+
 * |  body length (u32 LE), at most 65524                          |  8
 * +---------------------------------------------------------------+
 * |  body: fields as in the stream (tag u16, type u8, value)      | 12
 * +---------------------------------------------------------------+
 * </pre>
 * type 1 = offer, 2 = accept, 3 = refuse. Decoders reject unknown message versions, types, wrong field types, missing
 * fields and trailing bytes with a {@link HandshakeException}; unknown field tags are skipped.
 */
public final class HandshakeCodec {
    /** Largest message, header included. */
    public static final int MAX_MESSAGE_BYTES = 64 * 1024;
    /** Message magic. */
    public static final byte[] MAGIC = {0x4F, 0x50, 0x4D, 0x48};
    /** Header length. */
    public static final int HEADER_BYTES = 12;
    /** Message type of an offer. */
    public static final int TYPE_OFFER = 1;
    /** Message type of an accept. */
    public static final int TYPE_ACCEPT = 2;
    /** Message type of a refusal. */
    public static final int TYPE_REFUSE = 3;
    /** Message type that opens a handshake at a back-end's endpoint and names its role (integration.md §7). */
    public static final int TYPE_BEGIN = 4;
    /** Message type of the source endpoint's verdict on the answer (integration.md §7). */
    public static final int TYPE_RESULT = 5;
    /** Role of a back-end in {@link #TYPE_BEGIN}: the source. */
    public static final int ROLE_SOURCE = 1;
    /** Role of a back-end in {@link #TYPE_BEGIN}: the destination. */
    public static final int ROLE_DESTINATION = 2;
    private static final int MAX_REASONS = 1024;

    private HandshakeCodec() {}

    private static byte[] frame(int type, FieldWriter body) {
        byte[] b = body.toByteArray();
        if (b.length > MAX_MESSAGE_BYTES - HEADER_BYTES) {
            throw new IllegalArgumentException("handshake message body of " + b.length + " bytes exceeds " + (MAX_MESSAGE_BYTES - HEADER_BYTES));
        }
        byte[] m = new byte[HEADER_BYTES + b.length];
        System.arraycopy(MAGIC, 0, m, 0, 4);
        m[4] = 1;
        m[5] = (byte) type;
        Le.put32(m, 8, b.length);
        System.arraycopy(b, 0, m, HEADER_BYTES, b.length);
        return m;
    }

    /**
     * Encodes an offer.
     *
     * @param offer the offer
     * @return the message bytes
     */
    public static byte[] encode(MigrationOffer offer) {
        try {
            DeviceDescriptor d = offer.source();
            FieldWriter w = FieldWriter.inMemory()
                    .string(1, d.modelId()).string(2, d.implementationId()).string(3, d.formatClass());
            w.beginRecordArray(4, d.parameters().size());
            for (Map.Entry<String, String> e : d.parameters().entrySet()) {
                w.beginElement().string(1, e.getKey()).string(2, e.getValue()).endRecord();
            }
            w.endArray();
            w.int32Array(5, d.readVersions().stream().mapToInt(Integer::intValue).toArray())
                    .int32Array(6, d.writeVersions().stream().mapToInt(Integer::intValue).toArray())
                    .bytes(7, offer.nonce()).bytes(8, offer.modelDigest()).bytes(9, offer.keyAgreementPublicKey());
            return frame(TYPE_OFFER, w);
        } catch (IOException e) {
            throw new UncheckedIOException("in-memory encoding cannot fail", e);
        }
    }

    /**
     * Encodes an answer.
     *
     * @param answer accept or refusal
     * @return the message bytes
     */
    public static byte[] encode(MigrationAnswer answer) {
        try {
            FieldWriter w = FieldWriter.inMemory();
            switch (answer) {
                case MigrationAccept a -> {
                    w.bytes(1, a.nonce()).int32(2, a.formatVersion()).string(3, a.modelId()).string(4, a.formatClass())
                            .string(5, a.destinationImplementation()).bytes(6, a.keyAgreementPublicKey())
                            .bytes(7, a.destinationNonce()).int32(8, a.requirements());
                    w.bytesArray(9, a.signers());
                    return frame(TYPE_ACCEPT, w);
                }
                case MigrationRefusal r -> {
                    w.bytes(1, r.nonce());
                    w.beginRecordArray(2, r.reasons().size());
                    for (Incompatibility i : r.reasons()) {
                        w.beginElement().string(1, i.code().name()).string(2, i.subject()).string(3, i.detail()).endRecord();
                    }
                    w.endArray();
                    return frame(TYPE_REFUSE, w);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("in-memory encoding cannot fail", e);
        }
    }

    private static FieldReader open(byte[] m, int... types) throws HandshakeException {
        if (m.length < HEADER_BYTES || m.length > MAX_MESSAGE_BYTES) {
            throw new HandshakeException("handshake message length " + m.length + " outside " + HEADER_BYTES + ".." + MAX_MESSAGE_BYTES);
        }
        if (!Arrays.equals(m, 0, 4, MAGIC, 0, 4)) {
            throw new HandshakeException("bad handshake magic " + Le.hex(Arrays.copyOf(m, 4)));
        }
        if (m[4] != 1) {
            throw new HandshakeException("unsupported handshake message version " + (m[4] & 0xff));
        }
        if (m[6] != 0 || m[7] != 0) {
            throw new HandshakeException("handshake reserved bytes must be 0, value=" + Le.u16(m, 6));
        }
        int type = m[5] & 0xff;
        if (Arrays.stream(types).noneMatch(t -> t == type)) {
            throw new HandshakeException("handshake message type " + type + " where " + Arrays.toString(types) + " was expected");
        }
        long len = Integer.toUnsignedLong(Le.i32(m, 8));
        if (len != m.length - HEADER_BYTES) {
            throw new HandshakeException("handshake body length " + len + " but " + (m.length - HEADER_BYTES) + " bytes follow the header");
        }
        return FieldReader.of(m, HEADER_BYTES, (int) len);
    }

    /**
     * Decodes an offer.
     *
     * @param m message bytes from an untrusted peer
     * @return the offer
     * @throws HandshakeException if the message is malformed
     */
    public static MigrationOffer decodeOffer(byte[] m) throws HandshakeException {
        FieldReader f = open(m, TYPE_OFFER);
        try {
            String model = null;
            String impl = null;
            String format = null;
            Map<String, String> params = new LinkedHashMap<>();
            List<Integer> read = null;
            List<Integer> write = null;
            byte[] nonce = null;
            byte[] digest = null;
            byte[] pub = null;
            while (f.next()) {
                switch (f.tag()) {
                    case 1 -> model = f.string();
                    case 2 -> impl = f.string();
                    case 3 -> format = f.string();
                    case 4 -> {
                        ArrayReader a = f.array();
                        if (a.elementType() != FieldType.RECORD || a.count() > DeviceDescriptor.MAX_PARAMETERS) {
                            throw new HandshakeException("offer parameters must be at most " + DeviceDescriptor.MAX_PARAMETERS + " records, got "
                                    + a.count() + " of " + a.elementType());
                        }
                        while (a.hasNext()) {
                            FieldReader r = a.nextRecord();
                            String name = null;
                            String value = null;
                            while (r.next()) {
                                switch (r.tag()) {
                                    case 1 -> name = r.string();
                                    case 2 -> value = r.string();
                                    default -> r.skip();
                                }
                            }
                            if (name == null || value == null || params.put(name, value) != null) {
                                throw new HandshakeException("offer parameter record needs a unique name and a value, name=" + name);
                            }
                        }
                    }
                    case 5 -> read = versions(f, "read");
                    case 6 -> write = versions(f, "write");
                    case 7 -> nonce = f.bytes();
                    case 8 -> digest = f.bytes();
                    case 9 -> pub = f.bytes();
                    default -> f.skip();
                }
            }
            require(model != null && impl != null && format != null && read != null && write != null && nonce != null
                    && digest != null && pub != null, "offer lacks a required field");
            require(nonce.length == 32, "offer nonce must be 32 bytes, length=" + nonce.length);
            require(digest.length == 0 || digest.length == 32, "offer model digest must be 0 or 32 bytes, length=" + digest.length);
            require(pub.length == 0 || pub.length == 32, "offer X25519 key must be 0 or 32 bytes, length=" + pub.length);
            return new MigrationOffer(new DeviceDescriptor(model, impl, format, params, read, write), nonce, digest, pub);
        } catch (HandshakeException e) {
            throw e;
        } catch (IOException e) {
            throw new HandshakeException("malformed offer: " + e.getMessage(), e);
        }
    }

    /**
     * Decodes an answer.
     *
     * @param m message bytes from an untrusted peer
     * @return accept or refusal
     * @throws HandshakeException if the message is malformed
     */
    public static MigrationAnswer decodeAnswer(byte[] m) throws HandshakeException {
        FieldReader f = open(m, TYPE_ACCEPT, TYPE_REFUSE);
        try {
            if (m[5] == TYPE_ACCEPT) {
                byte[] nonce = null;
                Integer version = null;
                String model = null;
                String format = null;
                String impl = null;
                byte[] pub = null;
                byte[] destinationNonce = null;
                Integer requirements = null;
                List<byte[]> signers = null;
                while (f.next()) {
                    switch (f.tag()) {
                        case 1 -> nonce = f.bytes();
                        case 2 -> version = f.int32();
                        case 3 -> model = f.string();
                        case 4 -> format = f.string();
                        case 5 -> impl = f.string();
                        case 6 -> pub = f.bytes();
                        case 7 -> destinationNonce = f.bytes();
                        case 8 -> requirements = f.int32();
                        case 9 -> signers = signerKeys(f);
                        default -> f.skip();
                    }
                }
                require(nonce != null && version != null && model != null && format != null && impl != null && pub != null
                        && destinationNonce != null && requirements != null && signers != null, "accept lacks a required field");
                require(nonce.length == 32, "accept nonce must be 32 bytes, length=" + nonce.length);
                require(destinationNonce.length == 32, "accept destination nonce must be 32 bytes, length=" + destinationNonce.length);
                require(version >= 1, "accepted format version must be >= 1, version=" + version);
                require(pub.length == 0 || pub.length == 32, "accept X25519 key must be 0 or 32 bytes, length=" + pub.length);
                require((requirements & ~MigrationAccept.KNOWN_REQUIREMENTS) == 0,
                        "accept requirements 0x" + Integer.toHexString(requirements) + " has undefined bits");
                require(signers.isEmpty() || (requirements & MigrationAccept.REQUIRE_SIGNATURE) != 0,
                        "accept lists signers but does not require a signature");
                return new MigrationAccept(nonce, version, model, format, impl, pub, destinationNonce, requirements, signers);
            }
            byte[] nonce = null;
            List<Incompatibility> reasons = null;
            while (f.next()) {
                switch (f.tag()) {
                    case 1 -> nonce = f.bytes();
                    case 2 -> {
                        ArrayReader a = f.array();
                        if (a.elementType() != FieldType.RECORD || a.count() > MAX_REASONS) {
                            throw new HandshakeException("refusal reasons must be at most " + MAX_REASONS + " records, got " + a.count() + " of " + a.elementType());
                        }
                        reasons = new ArrayList<>();
                        while (a.hasNext()) {
                            FieldReader r = a.nextRecord();
                            String code = null;
                            String subject = "";
                            String detail = "";
                            while (r.next()) {
                                switch (r.tag()) {
                                    case 1 -> code = r.string();
                                    case 2 -> subject = r.string();
                                    case 3 -> detail = r.string();
                                    default -> r.skip();
                                }
                            }
                            require(code != null, "refusal reason without a code");
                            ReasonCode c = ReasonCode.ofWire(code);
                            reasons.add(new Incompatibility(c, c == ReasonCode.OTHER ? code + " " + subject : subject, detail));
                        }
                    }
                    default -> f.skip();
                }
            }
            require(nonce != null && reasons != null, "refusal lacks a required field");
            require(nonce.length == 32, "refusal nonce must be 32 bytes, length=" + nonce.length);
            return new MigrationRefusal(nonce, reasons);
        } catch (HandshakeException e) {
            throw e;
        } catch (IOException e) {
            throw new HandshakeException("malformed answer: " + e.getMessage(), e);
        }
    }

    /**
     * Encodes a begin message: the relay tells a back-end's endpoint which side of the handshake it takes.
     *
     * @param role {@link #ROLE_SOURCE} or {@link #ROLE_DESTINATION}
     * @return the message bytes
     */
    public static byte[] encodeBegin(int role) {
        try {
            return frame(TYPE_BEGIN, FieldWriter.inMemory().int32(1, role));
        } catch (IOException e) {
            throw new UncheckedIOException("in-memory encoding cannot fail", e);
        }
    }

    /**
     * Decodes a begin message.
     *
     * @param m message bytes from an untrusted peer
     * @return the role
     * @throws HandshakeException if the message is malformed or the role undefined
     */
    public static int decodeBegin(byte[] m) throws HandshakeException {
        FieldReader f = open(m, TYPE_BEGIN);
        try {
            Integer role = null;
            while (f.next()) {
                if (f.tag() == 1) {
                    role = f.int32();
                } else {
                    f.skip();
                }
            }
            require(role != null && (role == ROLE_SOURCE || role == ROLE_DESTINATION), "begin needs role 1 (source) or 2 (destination), role=" + role);
            return role;
        } catch (HandshakeException e) {
            throw e;
        } catch (IOException e) {
            throw new HandshakeException("malformed begin: " + e.getMessage(), e);
        }
    }

    /**
     * The source endpoint's verdict (message type 5).
     *
     * @param agreed whether the source took the accept and will write the stream
     * @param detail why not, or empty
     * @param formatVersion the version it will write (0 when not agreed)
     * @param handshakeHash the handshake hash (empty when not agreed)
     */
    public record Result(boolean agreed, String detail, int formatVersion, byte[] handshakeHash) {
        /** Canonical constructor: copies. */
        public Result {
            handshakeHash = handshakeHash.clone();
        }

        @Override
        public byte[] handshakeHash() {
            return handshakeHash.clone();
        }
    }

    /**
     * Encodes a result message.
     *
     * @param r the result
     * @return the message bytes
     */
    public static byte[] encodeResult(Result r) {
        try {
            return frame(TYPE_RESULT, FieldWriter.inMemory().int32(1, r.agreed() ? 0 : 1).string(2, r.detail())
                    .int32(3, r.formatVersion()).bytes(4, r.handshakeHash()));
        } catch (IOException e) {
            throw new UncheckedIOException("in-memory encoding cannot fail", e);
        }
    }

    /**
     * Decodes a result message.
     *
     * @param m message bytes from an untrusted peer
     * @return the result
     * @throws HandshakeException if the message is malformed
     */
    public static Result decodeResult(byte[] m) throws HandshakeException {
        FieldReader f = open(m, TYPE_RESULT);
        try {
            Integer status = null;
            String detail = null;
            Integer version = null;
            byte[] hash = null;
            while (f.next()) {
                switch (f.tag()) {
                    case 1 -> status = f.int32();
                    case 2 -> detail = f.string();
                    case 3 -> version = f.int32();
                    case 4 -> hash = f.bytes();
                    default -> f.skip();
                }
            }
            require(status != null && detail != null && version != null && hash != null, "result lacks a required field");
            require(status == 0 || status == 1, "result status must be 0 or 1, status=" + status);
            require(status == 1 || (hash.length == 32 && version >= 1), "an agreed result needs a 32-byte handshake hash and a version");
            return new Result(status == 0, detail, version, hash);
        } catch (HandshakeException e) {
            throw e;
        } catch (IOException e) {
            throw new HandshakeException("malformed result: " + e.getMessage(), e);
        }
    }

    /**
     * {@return the message type of an encoded message (byte 5), without validating it}
     *
     * @param m message bytes
     */
    public static int typeOf(byte[] m) {
        return m.length > 5 ? m[5] & 0xff : -1;
    }

    /**
     * Writes one message to a channel. Messages are self-delimiting (the header carries the body length), so a
     * byte stream between two parties can carry offer and answer back to back without extra framing.
     *
     * @param channel blocking channel
     * @param message an encoded message
     * @throws IOException if the channel fails
     */
    public static void writeMessage(java.nio.channels.WritableByteChannel channel, byte[] message) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(message);
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    /**
     * Reads exactly one message from a channel: the header, then the body whose length it announces (capped at
     * {@link #MAX_MESSAGE_BYTES} before anything is allocated). Decode the result with {@link #decodeOffer} or
     * {@link #decodeAnswer}.
     *
     * @param channel blocking channel
     * @return the message bytes
     * @throws HandshakeException if the header is not a handshake header, the length is over the cap, or the
     *         channel ends inside the message
     * @throws IOException if the channel fails
     */
    public static byte[] readMessage(java.nio.channels.ReadableByteChannel channel) throws IOException {
        byte[] header = new byte[HEADER_BYTES];
        readFully(channel, header, 0, HEADER_BYTES);
        if (!Arrays.equals(header, 0, 4, MAGIC, 0, 4)) {
            throw new HandshakeException("bad handshake magic " + Le.hex(Arrays.copyOf(header, 4)));
        }
        long len = Integer.toUnsignedLong(Le.i32(header, 8));
        if (len > MAX_MESSAGE_BYTES - HEADER_BYTES) {
            throw new HandshakeException("handshake body length " + len + " exceeds " + (MAX_MESSAGE_BYTES - HEADER_BYTES));
        }
        byte[] m = Arrays.copyOf(header, HEADER_BYTES + (int) len);
        readFully(channel, m, HEADER_BYTES, (int) len);
        return m;
    }

    private static void readFully(java.nio.channels.ReadableByteChannel channel, byte[] b, int off, int len) throws IOException {
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(b, off, len);
        while (bb.hasRemaining()) {
            if (channel.read(bb) < 0) {
                throw new HandshakeException("channel ended inside a handshake message after " + (bb.position() - off) + " of " + len + " bytes");
            }
        }
    }

    private static List<byte[]> signerKeys(FieldReader f) throws IOException {
        ArrayReader a = f.array();
        if (a.elementType() != FieldType.BYTES || a.count() > MigrationAccept.MAX_SIGNERS) {
            throw new HandshakeException("accept signers must be at most " + MigrationAccept.MAX_SIGNERS + " BYTES, got "
                    + a.count() + " of " + a.elementType());
        }
        List<byte[]> keys = new ArrayList<>();
        while (a.hasNext()) {
            byte[] k = a.nextBytes();
            if (k.length != 32) {
                throw new HandshakeException("accept signer key must be 32 bytes, length=" + k.length);
            }
            keys.add(k);
        }
        return keys;
    }

    private static List<Integer> versions(FieldReader f, String what) throws IOException {
        ArrayReader a = f.array();
        if (a.elementType() != FieldType.INT32 || a.count() > DeviceDescriptor.MAX_VERSIONS) {
            throw new HandshakeException("offer " + what + " versions must be at most " + DeviceDescriptor.MAX_VERSIONS + " INT32, got "
                    + a.count() + " of " + a.elementType());
        }
        List<Integer> v = new ArrayList<>();
        for (long x : a.toLongArray()) {
            if (x < 1) {
                throw new HandshakeException("offer " + what + " version " + x + " must be >= 1");
            }
            v.add((int) x);
        }
        return v;
    }

    private static void require(boolean ok, String message) throws HandshakeException {
        if (!ok) {
            throw new HandshakeException(message);
        }
    }
}
