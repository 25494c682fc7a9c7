package dev.outproc.migration.stream;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.integrity.VerifyingKey;
import dev.outproc.migration.internal.ByteSource;
import dev.outproc.migration.internal.Crypto;
import dev.outproc.migration.internal.Le;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Reads a device-state stream section by section with bounded memory; blobs go straight into segments.
 *
 * {@snippet :
 * try (DeviceStateReader r = DeviceStateReader.open(channel, agreement)) {
 *     SectionInfo s;
 *     while ((s = r.nextSection()) != null) {
 *         switch (s.id()) {
 *             case 1 -> { r.requireVersion(1, 2); readConfig(r.fields()); }
 *             case 2 -> r.fields().next(); // ...
 *             default -> r.skipSection();  // refuses an unknown must-understand section
 *         }
 *     }
 *     r.finish();       // trailer: transcript, MAC, signature
 *     commitStagedState();
 * }
 * }
 *
 * <h2 id="verify">When state may be used</h2>
 * Each section's digest is checked when the reader leaves the section; the transcript, MAC and signature are
 * checked by {@link #finish()} (or by the {@link #nextSection()} call that meets the trailer). A device stages what
 * it reads and commits only after {@link #finish()} returns: any corruption, truncation, reordering or splice is
 * reported before that point as a {@link MigrationStreamException}.
 *
 * <p>A section that the caller neither opened ({@link #fields()}, {@link #envelope()}) nor skipped is skipped by the
 * next {@link #nextSection()} if it is skippable, and refused if it is must-understand.
 */
public final class DeviceStateReader implements AutoCloseable {
    private final ByteSource src;
    private final HandshakeAgreement expected;
    private final byte[] macKey;
    private final Set<VerifyingKey> trustedSigners;
    private String expectedModel;
    private String expectedFormat;
    private int minVersion;
    private int maxVersion;
    private StreamHeader header;
    private MessageDigest sectionDigest;
    private MessageDigest chain;
    private byte[] transcript;
    private SectionInfo current;
    private ChunkedInput body;
    private boolean claimed;
    private FieldReader envelopeFields;
    private int sequence;
    private final Set<Integer> seenSections = new java.util.HashSet<>();
    private StreamTrailer trailer;
    private boolean closed;

    private DeviceStateReader(ReadableByteChannel channel, HandshakeAgreement expected, byte[] macKey,
            Set<VerifyingKey> trustedSigners) {
        this.src = new ByteSource(channel);
        this.expected = expected;
        this.macKey = macKey;
        this.trustedSigners = trustedSigners;
    }

    /**
     * Opens a reader for the stream agreed in a handshake and reads the header. The header must name the agreed
     * model, format class and version and carry the agreed nonce and handshake hash; digests, MAC and signature
     * are required as the agreement says.
     *
     * @param channel blocking source; a non-blocking channel works but the reader spins while no byte is available,
     *        so put such fds in blocking mode
     * @param agreement the handshake result
     * @return the reader, positioned before the first section
     * @throws IOException if the header is malformed or does not match the agreement
     */
    public static DeviceStateReader open(ReadableByteChannel channel, HandshakeAgreement agreement) throws IOException {
        DeviceStateReader r = new DeviceStateReader(channel, agreement, agreement.macKey(), agreement.trustedStreamSigners());
        r.readHeader();
        return r;
    }

    /**
     * Opens a reader over an input stream.
     *
     * @param in source
     * @param agreement the handshake result
     * @return the reader
     * @throws IOException if the header is malformed or does not match the agreement
     */
    public static DeviceStateReader open(InputStream in, HandshakeAgreement agreement) throws IOException {
        return open(Channels.newChannel(in), agreement);
    }

    /**
     * Opens a reader that accepts any header (for inspection tools): digests present in the stream are verified,
     * the MAC only when a key is given, a signature is checked against its own public key and, when
     * {@code trustedSigners} is not empty, must come from one of them.
     *
     * @param channel blocking source
     * @param macKey MAC key, or null
     * @param trustedSigners accepted signers, or empty for any
     * @return the reader
     * @throws IOException if the header is malformed
     */
    public static DeviceStateReader openForInspection(ReadableByteChannel channel, byte[] macKey,
            Set<VerifyingKey> trustedSigners) throws IOException {
        DeviceStateReader r = new DeviceStateReader(channel, null, macKey == null ? null : macKey.clone(), Set.copyOf(trustedSigners));
        r.readHeader();
        return r;
    }

    /**
     * Opens a reader for a stream that no handshake preceded (a local snapshot restored by the same or a later
     * version of a device): the header must name the model and format class and a version in the given range, and
     * must carry digests; the nonce is not checked.
     *
     * @param channel blocking source
     * @param modelId expected model
     * @param formatClass expected format class
     * @param minVersion lowest format version the caller reads
     * @param maxVersion highest format version the caller reads
     * @return the reader
     * @throws IOException if the header is malformed or names something else
     */
    public static DeviceStateReader openUnattested(ReadableByteChannel channel, String modelId, String formatClass,
            int minVersion, int maxVersion) throws IOException {
        return openUnattested(channel, modelId, formatClass, minVersion, maxVersion, null, Set.of());
    }

    /**
     * Opens a reader for a stream without a handshake (a file or snapshot, stream-format.md §7.5) with the same checks
     * a handshake would give: a MAC under a pre-shared key, and a trailer signed by a pinned signer.
     * {@snippet :
     * try (DeviceStateReader r = DeviceStateReader.openUnattested(file, MODEL, FORMAT, 1, 2, null, Set.of(vendorKey))) {
     *     // read sections; finish() refuses an unsigned stream or one signed by another key
     * }
     * }
     *
     * @param channel blocking source
     * @param modelId expected model
     * @param formatClass expected format class
     * @param minVersion lowest format version the caller reads
     * @param maxVersion highest format version the caller reads
     * @param macKey pre-shared 32-byte MAC key the stream must carry a MAC under, or null
     * @param pinnedSigners keys of which one must have signed the trailer, or empty to not require a signature
     * @return the reader
     * @throws IOException if the header is malformed, names something else or lacks a required protection
     */
    public static DeviceStateReader openUnattested(ReadableByteChannel channel, String modelId, String formatClass,
            int minVersion, int maxVersion, byte[] macKey, Set<VerifyingKey> pinnedSigners) throws IOException {
        if (macKey != null && macKey.length != 32) {
            throw new IllegalArgumentException("MAC key must be 32 bytes, length=" + macKey.length);
        }
        DeviceStateReader r = new DeviceStateReader(channel, null, macKey == null ? null : macKey.clone(), Set.copyOf(pinnedSigners));
        r.expectedModel = modelId;
        r.expectedFormat = formatClass;
        r.minVersion = minVersion;
        r.maxVersion = maxVersion;
        r.readHeader();
        return r;
    }

    /**
     * Reads a whole stream and returns what the decoder staged only after the trailer verified: the safe way to load.
     * The decoder iterates the sections ({@link #nextSection()}) and returns the staged state; this method then calls
     * {@link #finish()}, so a corrupt, truncated, reordered or replayed stream throws before the caller sees the state.
     *
     * @param channel blocking source
     * @param agreement the handshake result
     * @param decoder reads sections and returns the staged state
     * @param <T> the staged state
     * @return the staged state, verified
     * @throws IOException if the stream is refused
     */
    public static <T> T readVerified(ReadableByteChannel channel, HandshakeAgreement agreement, StateDecoder<T> decoder) throws IOException {
        try (DeviceStateReader r = open(channel, agreement)) {
            T staged = decoder.decode(r);
            r.finish();
            return staged;
        }
    }

    /** @return the decoded header */
    public StreamHeader header() {
        return header;
    }

    /** @return current stream offset */
    public long position() {
        return src.position();
    }

    private void readHeader() throws IOException {
        MessageDigest hd = Crypto.sha256();
        src.setTap(hd);
        byte[] fixed = new byte[StreamLayout.VARIABLE_OFFSET];
        src.readFully(fixed, 0, fixed.length);
        if (!Arrays.equals(fixed, 0, 8, StreamLayout.MAGIC, 0, 8)) {
            throw new StreamFormatException("bad magic " + Le.hex(Arrays.copyOf(fixed, 8)) + ", expected " + Le.hex(StreamLayout.MAGIC)
                    + ": not an outproc device-state stream");
        }
        int version = Le.u16(fixed, StreamLayout.VERSION_OFFSET);
        if (version != StreamLayout.STREAM_VERSION) {
            throw new StreamFormatException("unsupported stream version " + version + ", this reader supports " + StreamLayout.STREAM_VERSION);
        }
        int flags = Le.u16(fixed, StreamLayout.FLAGS_OFFSET);
        if ((flags & ~StreamLayout.KNOWN_FLAGS) != 0) {
            throw new StreamFormatException("undefined header flags 0x" + Integer.toHexString(flags & ~StreamLayout.KNOWN_FLAGS));
        }
        if ((flags & StreamLayout.FLAG_DIGESTS) == 0 && flags != 0) {
            throw new StreamFormatException("MAC or SIGNATURE flag without DIGESTS, flags=0x" + Integer.toHexString(flags));
        }
        long length = Integer.toUnsignedLong(Le.i32(fixed, StreamLayout.HEADER_LENGTH_OFFSET));
        if (length < StreamLayout.MIN_HEADER_BYTES || length > StreamLimits.MAX_HEADER_BYTES) {
            throw new StreamFormatException("header length " + length + " outside " + StreamLayout.MIN_HEADER_BYTES + ".." + StreamLimits.MAX_HEADER_BYTES);
        }
        int formatVersion = Le.i32(fixed, StreamLayout.FORMAT_VERSION_OFFSET);
        int reserved = Le.i32(fixed, StreamLayout.RESERVED_OFFSET);
        if (reserved != 0) {
            throw new StreamFormatException("header reserved word must be 0, value=0x" + Integer.toHexString(reserved));
        }
        if (formatVersion < 1) {
            throw new StreamFormatException("format version must be >= 1, value=" + Integer.toUnsignedString(formatVersion));
        }
        byte[] rest = new byte[(int) length - StreamLayout.VARIABLE_OFFSET];
        src.readFully(rest, 0, rest.length);
        int[] p = {0};
        String model = headerString(rest, p, "model id");
        String format = headerString(rest, p, "format class");
        String impl = headerString(rest, p, "implementation id");
        List<HeaderExtension> extensions = headerExtensions(rest, p[0], StreamLayout.VARIABLE_OFFSET);
        src.setTap(null);
        header = new StreamHeader(version, flags, (int) length, formatVersion,
                Arrays.copyOfRange(fixed, StreamLayout.NONCE_OFFSET, StreamLayout.NONCE_OFFSET + 32),
                Arrays.copyOfRange(fixed, StreamLayout.HANDSHAKE_HASH_OFFSET, StreamLayout.HANDSHAKE_HASH_OFFSET + 32),
                model, format, impl, extensions);
        if (header.hasDigests()) {
            transcript = hd.digest();
            sectionDigest = Crypto.sha256();
            chain = Crypto.sha256();
        }
        checkAgainstAgreement();
    }

    /**
     * Parses the header extension (stream-format.md §3.1): entries that fill the rest of the header exactly. This
     * version defines no entry kind, so every critical entry is refused and every other one is kept for the caller.
     */
    private static List<HeaderExtension> headerExtensions(byte[] rest, int start, int base) throws StreamFormatException {
        List<HeaderExtension> entries = new ArrayList<>();
        int p = start;
        while (p < rest.length) {
            if (rest.length - p < HeaderExtension.ENTRY_HEADER_BYTES) {
                throw new StreamFormatException("header extension entry at offset " + (base + p) + " needs "
                        + HeaderExtension.ENTRY_HEADER_BYTES + " bytes, " + (rest.length - p) + " remain");
            }
            int kind = Le.u16(rest, p);
            int version = rest[p + 2] & 0xff;
            int flags = rest[p + 3] & 0xff;
            int len = Le.u16(rest, p + 4);
            if (version == 0 || (flags & ~HeaderExtension.FLAG_CRITICAL) != 0) {
                throw new StreamFormatException("header extension entry kind " + kind + " at offset " + (base + p)
                        + " has version " + version + " and flags 0x" + Integer.toHexString(flags) + ": version must be >= 1, flags only bit 0");
            }
            if (len > rest.length - p - HeaderExtension.ENTRY_HEADER_BYTES) {
                throw new StreamFormatException("header extension entry kind " + kind + " at offset " + (base + p) + " has length "
                        + len + ", only " + (rest.length - p - HeaderExtension.ENTRY_HEADER_BYTES) + " bytes remain in the header");
            }
            boolean critical = (flags & HeaderExtension.FLAG_CRITICAL) != 0;
            if (critical) {
                throw new StreamFormatException("header extension entry kind " + kind + " version " + version
                        + " is critical and unknown to this reader");
            }
            int from = p + HeaderExtension.ENTRY_HEADER_BYTES;
            entries.add(new HeaderExtension(kind, version, false, Arrays.copyOfRange(rest, from, from + len)));
            p = from + len;
        }
        return entries;
    }

    private static String headerString(byte[] rest, int[] p, String what) throws StreamFormatException {
        if (rest.length - p[0] < 2) {
            throw new StreamFormatException("header too short for the " + what + " length");
        }
        int len = Le.u16(rest, p[0]);
        if (len > StreamLimits.MAX_ID_BYTES || len > rest.length - p[0] - 2) {
            throw new StreamFormatException(what + " length " + len + " exceeds the header or " + StreamLimits.MAX_ID_BYTES);
        }
        try {
            String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(rest, p[0] + 2, len)).toString();
            p[0] += 2 + len;
            return s;
        } catch (CharacterCodingException e) {
            throw new StreamFormatException(what + " in the header is not well-formed UTF-8");
        }
    }

    private void checkAgainstAgreement() throws MigrationStreamException {
        if (expectedModel != null) {
            if (!header.modelId().equals(expectedModel) || !header.formatClass().equals(expectedFormat)) {
                throw new StreamIntegrityException("stream holds " + header.modelId() + " / " + header.formatClass() + ", expected "
                        + expectedModel + " / " + expectedFormat);
            }
            if (header.formatVersion() < minVersion || header.formatVersion() > maxVersion) {
                throw new UnsupportedSectionException(0, header.formatVersion(), "stream format version " + header.formatVersion()
                        + " is outside the versions this reader accepts, " + minVersion + ".." + maxVersion);
            }
            if (!header.hasDigests()) {
                throw new StreamIntegrityException("stream has no digests; an unattested stream must carry them");
            }
            if (macKey != null && !header.hasMac()) {
                throw new StreamIntegrityException("stream has no MAC but the reader holds a MAC key and requires one");
            }
            if (!trustedSigners.isEmpty() && !header.hasSignature()) {
                throw new StreamIntegrityException("stream is not signed but the reader pins signer(s) " + trustedSigners);
            }
            return;
        }
        if (expected == null) {
            return;
        }
        if (!header.modelId().equals(expected.modelId())) {
            throw new StreamIntegrityException("stream model '" + header.modelId() + "' is not the agreed model '" + expected.modelId() + "'");
        }
        if (!header.formatClass().equals(expected.formatClass())) {
            throw new StreamIntegrityException("stream format class '" + header.formatClass() + "' is not the agreed '" + expected.formatClass() + "'");
        }
        if (header.formatVersion() != expected.formatVersion()) {
            throw new StreamIntegrityException("stream format version " + header.formatVersion() + " is not the agreed version " + expected.formatVersion());
        }
        if (!MessageDigest.isEqual(header.nonce(), expected.nonce())) {
            throw new StreamIntegrityException("stream nonce " + Le.hex(header.nonce()) + " is not the handshake nonce "
                    + Le.hex(expected.nonce()) + ": the stream belongs to another migration (replayed?)");
        }
        if (!MessageDigest.isEqual(header.handshakeHash(), expected.handshakeHash())) {
            throw new StreamIntegrityException("stream handshake hash " + Le.hex(header.handshakeHash()) + " is not this handshake's "
                    + Le.hex(expected.handshakeHash()));
        }
        if (expected.digests() && !header.hasDigests()) {
            throw new StreamIntegrityException("stream has no digests but the agreement requires them");
        }
        if (expected.macKey() != null && !header.hasMac()) {
            throw new StreamIntegrityException("stream has no MAC but the agreement requires one");
        }
        if (expected.signatureRequired() && !header.hasSignature()) {
            throw new StreamIntegrityException("stream is not signed but the agreement requires a signature");
        }
    }

    /**
     * Moves to the next section, finishing the current one (skipping what is unread and checking its digest).
     *
     * @return the next section's header, or null when the trailer was reached and verified
     * @throws IOException if the stream is malformed, fails verification, or an unread section was must-understand
     */
    public SectionInfo nextSection() throws IOException {
        if (closed) {
            throw new IllegalStateException("reader closed");
        }
        if (trailer != null) {
            return null;
        }
        if (current != null) {
            if (!claimed && current.mustUnderstand()) {
                throw unsupported(current, "is must-understand and was not read by this reader");
            }
            endSection();
        }
        long at = src.position();
        if (header.hasDigests()) {
            sectionDigest.reset();
            src.setTap(sectionDigest);
        }
        int frame = src.u8();
        if (frame == StreamLayout.FRAME_TRAILER) {
            src.setTap(null);
            readTrailer();
            return null;
        }
        if (frame != StreamLayout.FRAME_SECTION) {
            throw new StreamFormatException("expected a section (0x53) or trailer (0x54) at offset " + at + ", found 0x" + Integer.toHexString(frame));
        }
        int flags = src.u8();
        if ((flags & ~StreamLayout.KNOWN_SECTION_FLAGS) != 0) {
            throw new StreamFormatException("undefined section flags 0x" + Integer.toHexString(flags) + " at offset " + at);
        }
        int version = src.u16();
        int id = src.i32();
        int seq = src.i32();
        if (version == 0) {
            throw new StreamFormatException("section " + Integer.toUnsignedString(id) + " has version 0 at offset " + at);
        }
        if (seq != sequence) {
            throw new StreamIntegrityException("section " + Integer.toUnsignedString(id) + " has sequence number " + Integer.toUnsignedString(seq)
                    + " where " + sequence + " was expected at offset " + at + ": sections reordered, dropped or spliced");
        }
        if (!seenSections.add(id)) {
            throw new StreamFormatException("section " + Integer.toUnsignedString(id) + " appears a second time at offset " + at
                    + ": a section id occurs at most once in a stream");
        }
        current = new SectionInfo(id, version, flags, seq, at);
        body = new ChunkedInput(src, current);
        claimed = false;
        envelopeFields = null;
        return current;
    }

    private void endSection() throws IOException {
        body.drain();
        if (header.hasDigests()) {
            src.setTap(null);
            byte[] stored = new byte[Crypto.HASH_BYTES];
            src.readFully(stored, 0, stored.length);
            byte[] actual = sectionDigest.digest();
            if (!MessageDigest.isEqual(stored, actual)) {
                throw new StreamIntegrityException("digest of section " + current.idString() + " (sequence " + current.sequence()
                        + ", offset " + current.offset() + ") is " + Le.hex(actual) + " but the stream says " + Le.hex(stored));
            }
            chain.update(transcript);
            chain.update(actual);
            transcript = chain.digest();
        }
        sequence++;
        current = null;
        body = null;
    }

    private UnsupportedSectionException unsupported(SectionInfo s, String why) {
        return new UnsupportedSectionException(s.id(), s.version(), "section " + s.idString() + " version " + s.version()
                + (s.envelope() ? " (envelope)" : "") + " at offset " + s.offset() + " " + why);
    }

    private SectionInfo requireCurrent() {
        if (current == null) {
            throw new IllegalStateException("not positioned on a section; call nextSection()");
        }
        return current;
    }

    /**
     * Refuses the current section unless its version is in the range this reader understands.
     *
     * @param min lowest accepted version
     * @param max highest accepted version
     * @throws UnsupportedSectionException if the version is outside the range
     */
    public void requireVersion(int min, int max) throws UnsupportedSectionException {
        SectionInfo s = requireCurrent();
        if (s.version() < min || s.version() > max) {
            claimed = true;
            throw unsupported(s, "is outside the versions this reader accepts, " + min + ".." + max);
        }
    }

    /**
     * Opens the current section's fields.
     *
     * @return a reader of the section body
     */
    public FieldReader fields() {
        requireCurrent();
        claimed = true;
        return new FieldReader(body, 0, false);
    }

    /**
     * Reads the head of the current envelope section.
     *
     * @return vendor id, schema version and payload length; read the payload with {@link #readEnvelopePayload}
     * @throws IOException if the section is not a well-formed envelope
     */
    public Envelope envelope() throws IOException {
        SectionInfo s = requireCurrent();
        if (!s.envelope()) {
            throw new StreamFormatException("section " + s.idString() + " is not an envelope");
        }
        claimed = true;
        FieldReader f = new FieldReader(body, 0, false);
        String vendor = null;
        int schema = 0;
        if (f.next() && f.tag() == StreamLayout.ENVELOPE_VENDOR_TAG) {
            vendor = f.string();
        }
        if (vendor != null && f.next() && f.tag() == StreamLayout.ENVELOPE_SCHEMA_TAG) {
            schema = f.int32();
            if (f.next() && f.tag() == StreamLayout.ENVELOPE_PAYLOAD_TAG) {
                long len = f.bytesLength();
                envelopeFields = f;
                return new Envelope(vendor, schema, len);
            }
        }
        throw new StreamFormatException("envelope section " + s.idString() + " must hold vendor id (1, STRING), schema version (2, INT32), payload (3, BYTES) in that order");
    }

    /**
     * Reads the current envelope's payload into a segment of exactly {@link Envelope#payloadLength()} bytes.
     *
     * @param dst destination
     * @throws IOException if the stream ends early
     */
    public void readEnvelopePayload(MemorySegment dst) throws IOException {
        if (envelopeFields == null) {
            throw new IllegalStateException("call envelope() first");
        }
        envelopeFields.readBytesBody(dst);
        envelopeFields = null;
        if (!body.atEnd()) {
            throw new StreamFormatException("envelope section " + current.idString() + " at offset " + current.offset()
                    + " has bytes after its payload field: an envelope holds exactly three fields");
        }
    }

    /**
     * Skips the current section; a must-understand section cannot be skipped.
     *
     * @throws UnsupportedSectionException if the section is must-understand
     */
    public void skipSection() throws UnsupportedSectionException {
        SectionInfo s = requireCurrent();
        if (s.mustUnderstand()) {
            claimed = true;
            throw unsupported(s, "is must-understand and unknown to this reader");
        }
        claimed = true;
    }

    /**
     * Skips every remaining skippable section and verifies the trailer.
     *
     * @return the verified trailer
     * @throws IOException if a remaining section is must-understand, or verification fails
     */
    public StreamTrailer finish() throws IOException {
        while (nextSection() != null) {
            skipSection();
        }
        return trailer;
    }

    private void readTrailer() throws IOException {
        byte[] fixed = new byte[StreamLayout.TRAILER_FIXED_BYTES];
        fixed[0] = (byte) StreamLayout.FRAME_TRAILER;
        src.readFully(fixed, 1, fixed.length - 1);
        int flags = Le.u16(fixed, 2);
        long count = Integer.toUnsignedLong(Le.i32(fixed, 4));
        if (fixed[1] != 0) {
            throw new StreamFormatException("trailer reserved byte must be 0, value=" + (fixed[1] & 0xff));
        }
        if (flags != header.flags()) {
            throw new StreamIntegrityException("trailer flags 0x" + Integer.toHexString(flags) + " differ from header flags 0x" + Integer.toHexString(header.flags()));
        }
        if (count != sequence) {
            throw new StreamIntegrityException("trailer counts " + count + " sections but the stream held " + sequence + ": sections dropped or added");
        }
        boolean macOk = false;
        VerifyingKey signer = null;
        if (header.hasDigests()) {
            byte[] stored = new byte[Crypto.HASH_BYTES];
            src.readFully(stored, 0, stored.length);
            if (!MessageDigest.isEqual(stored, transcript)) {
                throw new StreamIntegrityException("transcript is " + Le.hex(transcript) + " but the trailer says " + Le.hex(stored));
            }
            byte[] mac = null;
            if (header.hasMac()) {
                mac = new byte[Crypto.HASH_BYTES];
                src.readFully(mac, 0, mac.length);
                if (macKey != null) {
                    byte[] want = Crypto.hmac(macKey, Crypto.MAC_LABEL, transcript, fixed);
                    if (!MessageDigest.isEqual(want, mac)) {
                        throw new StreamIntegrityException("MAC does not verify with the key agreed in the handshake");
                    }
                    macOk = true;
                }
            } else if (macKey != null) {
                throw new StreamIntegrityException("stream has no MAC but a MAC key was agreed");
            }
            if (header.hasSignature()) {
                byte[] pk = new byte[VerifyingKey.LENGTH];
                byte[] sig = new byte[VerifyingKey.SIGNATURE_LENGTH];
                src.readFully(pk, 0, pk.length);
                src.readFully(sig, 0, sig.length);
                VerifyingKey key = VerifyingKey.of(pk);
                if (!key.verify(DeviceStateWriter.signatureInput(transcript, fixed, mac), sig)) {
                    throw new StreamIntegrityException("trailer signature by " + key + " does not verify");
                }
                if (!trustedSigners.isEmpty() && !trustedSigners.contains(key)) {
                    throw new StreamIntegrityException("trailer is signed by " + key + ", which is not a trusted signer " + trustedSigners);
                }
                signer = key;
            } else if (!trustedSigners.isEmpty()) {
                throw new StreamIntegrityException("stream is not signed but a signature by " + trustedSigners + " is required");
            }
        }
        long end = src.position();
        if (!src.atEnd()) {
            throw new StreamFormatException("bytes after the trailer at offset " + end + ": the stream must end with its trailer");
        }
        trailer = new StreamTrailer(sequence, transcript == null ? null : transcript.clone(), header.hasMac(), macOk, signer, end);
    }

    /** Releases the reader; the channel is not closed. */
    @Override
    public void close() {
        closed = true;
    }
}
