package dev.outproc.migration.stream;

import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.internal.ByteSink;
import dev.outproc.migration.internal.Crypto;
import dev.outproc.migration.internal.Le;
import dev.outproc.migration.integrity.SigningKey;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * Writes a device-state stream: header, sections of typed fields, trailer. Memory is bounded (two 64 KiB buffers)
 * however large the state; blobs are copied from their {@link MemorySegment}s into the output buffer once.
 *
 * {@snippet :
 * try (DeviceStateWriter w = DeviceStateWriter.open(channel, agreement)) {
 *     w.beginSection(1, 1, true).int64(1, capacity).int32(2, blkSize);
 *     w.endSection();
 *     w.beginSection(2, 1, true).bytes(1, ram);
 *     w.endSection();
 *     w.finish();
 * }
 * }
 *
 * <p>A writer that can produce several format versions writes the one in {@link #formatVersion()}: that is how the
 * handshake asks for a downgrade. {@link #close()} without {@link #finish()} leaves the stream without a trailer,
 * which every reader refuses: an aborted save can never be loaded. The channel is not closed.
 */
public final class DeviceStateWriter implements AutoCloseable {
    private final ByteSink sink;
    private final HandshakeAgreement agreement;
    private final boolean digests;
    private final int flags;
    private final MessageDigest sectionDigest;
    private final MessageDigest chain;
    private byte[] transcript;
    private final ChunkedOutput body;
    private final FieldWriter fields;
    private boolean inSection;
    private int sequence;
    private boolean finished;

    private DeviceStateWriter(WritableByteChannel channel, HandshakeAgreement agreement) {
        this.sink = new ByteSink(channel);
        this.agreement = agreement;
        this.digests = agreement.digests();
        this.flags = (digests ? StreamLayout.FLAG_DIGESTS : 0)
                | (agreement.macKey() != null ? StreamLayout.FLAG_MAC : 0)
                | (agreement.signingKey() != null ? StreamLayout.FLAG_SIGNATURE : 0);
        this.sectionDigest = digests ? Crypto.sha256() : null;
        this.chain = digests ? Crypto.sha256() : null;
        // One chunk buffer and field writer for every section: writing a section allocates nothing.
        this.body = new ChunkedOutput(sink);
        this.fields = new FieldWriter(body);
    }

    /**
     * Opens a writer and writes the header.
     *
     * @param channel blocking destination (a pipe from SET_DEVICE_STATE_FD, a file, a socket); a non-blocking
     *        channel works but the writer spins while it accepts nothing, so put such fds in blocking mode
     * @param agreement the handshake result
     * @return the writer
     * @throws IOException if the channel fails
     */
    public static DeviceStateWriter open(WritableByteChannel channel, HandshakeAgreement agreement) throws IOException {
        DeviceStateWriter w = new DeviceStateWriter(channel, agreement);
        w.writeHeader();
        return w;
    }

    /**
     * Opens a writer over an output stream.
     *
     * @param out destination
     * @param agreement the handshake result
     * @return the writer
     * @throws IOException if the stream fails
     */
    public static DeviceStateWriter open(OutputStream out, HandshakeAgreement agreement) throws IOException {
        return open(Channels.newChannel(out), agreement);
    }

    /** @return the agreed format version the sections must follow */
    public int formatVersion() {
        return agreement.formatVersion();
    }

    private static byte[] id(String s, String what) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > StreamLimits.MAX_ID_BYTES) {
            throw new IllegalArgumentException(what + " longer than " + StreamLimits.MAX_ID_BYTES + " bytes: " + s);
        }
        return b;
    }

    private void writeHeader() throws IOException {
        byte[] model = id(agreement.modelId(), "model id");
        byte[] format = id(agreement.formatClass(), "format class");
        byte[] impl = id(agreement.implementationId(), "implementation id");
        int length = StreamLayout.MIN_HEADER_BYTES + model.length + format.length + impl.length;
        byte[] h = new byte[length];
        System.arraycopy(StreamLayout.MAGIC, 0, h, 0, 8);
        Le.put16(h, StreamLayout.VERSION_OFFSET, StreamLayout.STREAM_VERSION);
        Le.put16(h, StreamLayout.FLAGS_OFFSET, flags);
        Le.put32(h, StreamLayout.HEADER_LENGTH_OFFSET, length);
        Le.put32(h, StreamLayout.FORMAT_VERSION_OFFSET, agreement.formatVersion());
        System.arraycopy(agreement.nonce(), 0, h, StreamLayout.NONCE_OFFSET, 32);
        System.arraycopy(agreement.handshakeHash(), 0, h, StreamLayout.HANDSHAKE_HASH_OFFSET, 32);
        int p = StreamLayout.VARIABLE_OFFSET;
        for (byte[] s : new byte[][] {model, format, impl}) {
            Le.put16(h, p, s.length);
            System.arraycopy(s, 0, h, p + 2, s.length);
            p += 2 + s.length;
        }
        sink.write(h, 0, h.length);
        if (digests) {
            transcript = Crypto.sha256(h);
        }
    }

    private void checkOpen() {
        if (finished) {
            throw new IllegalStateException("stream already finished or closed");
        }
    }

    /**
     * Starts a section; write its fields with the returned writer, then call {@link #endSection()}.
     *
     * @param sectionId id defined by the format class (u32)
     * @param version the section's version, 1..65535
     * @param mustUnderstand whether a reader that does not know the section must refuse the stream
     * @return the writer of the section body
     * @throws IOException if the channel fails
     */
    public FieldWriter beginSection(int sectionId, int version, boolean mustUnderstand) throws IOException {
        return begin(sectionId, version, mustUnderstand ? StreamLayout.SECTION_MUST_UNDERSTAND : 0);
    }

    private FieldWriter begin(int sectionId, int version, int sectionFlags) throws IOException {
        checkOpen();
        if (inSection) {
            throw new IllegalStateException("section " + Integer.toUnsignedString(sectionId) + " started inside an open section");
        }
        if (version < 1 || version > 0xffff) {
            throw new IllegalArgumentException("section version must be in 1..65535, version=" + version);
        }
        if (digests) {
            sectionDigest.reset();
            sink.setTap(sectionDigest);
        }
        sink.u8(StreamLayout.FRAME_SECTION);
        sink.u8(sectionFlags);
        sink.u16(version);
        sink.i32(sectionId);
        sink.i32(sequence);
        inSection = true;
        return fields;
    }

    /**
     * Ends the open section: terminator and digest.
     *
     * @throws IOException if the channel fails
     */
    public void endSection() throws IOException {
        checkOpen();
        if (!inSection) {
            throw new IllegalStateException("no open section");
        }
        if (!fields.balanced()) {
            throw new IllegalStateException("section ended with an open record or array");
        }
        body.end();
        inSection = false;
        if (digests) {
            sink.setTap(null);
            byte[] d = sectionDigest.digest();
            sink.write(d, 0, d.length);
            chain.update(transcript);
            chain.update(d);
            transcript = chain.digest();
        }
        sequence++;
    }

    /**
     * Writes an envelope section holding a vendor-opaque blob.
     *
     * @param sectionId section id
     * @param version section version
     * @param mustUnderstand whether a reader that does not know the section must refuse the stream
     * @param vendorId domain-rooted vendor id
     * @param schemaVersion the vendor's schema version of the payload
     * @param payload the blob
     * @throws IOException if the channel fails
     */
    public void writeEnvelope(int sectionId, int version, boolean mustUnderstand, String vendorId, int schemaVersion,
            MemorySegment payload) throws IOException {
        int f = StreamLayout.SECTION_ENVELOPE | (mustUnderstand ? StreamLayout.SECTION_MUST_UNDERSTAND : 0);
        id(vendorId, "vendor id");
        begin(sectionId, version, f)
                .string(StreamLayout.ENVELOPE_VENDOR_TAG, vendorId)
                .int32(StreamLayout.ENVELOPE_SCHEMA_TAG, schemaVersion)
                .bytes(StreamLayout.ENVELOPE_PAYLOAD_TAG, payload);
        endSection();
    }

    /**
     * Pushes every byte written so far into the channel, between sections. A transport that moves the stream in
     * parts while the device still runs (vfio-user PRE_COPY: the initial part first, the rest in STOP_COPY) calls it
     * after the sections of one part; the stream stays one stream, with one trailer written by {@link #finish()}.
     *
     * @throws IOException if the channel fails
     * @throws IllegalStateException inside a section or after {@link #finish()}
     */
    public void flush() throws IOException {
        checkOpen();
        if (inSection) {
            throw new IllegalStateException("flush() inside a section");
        }
        sink.flush();
    }

    /**
     * Writes the trailer and flushes. Nothing may be written afterwards.
     *
     * @return what was written (section count, transcript)
     * @throws IOException if the channel fails
     */
    public StreamTrailer finish() throws IOException {
        checkOpen();
        if (inSection) {
            throw new IllegalStateException("finish() with an open section");
        }
        byte[] fixed = new byte[StreamLayout.TRAILER_FIXED_BYTES];
        fixed[0] = (byte) StreamLayout.FRAME_TRAILER;
        Le.put16(fixed, 2, flags);
        Le.put32(fixed, 4, sequence);
        sink.write(fixed, 0, fixed.length);
        byte[] mac = null;
        if (digests) {
            sink.write(transcript, 0, transcript.length);
            byte[] key = agreement.macKey();
            if (key != null) {
                mac = Crypto.hmac(key, Crypto.MAC_LABEL, transcript, fixed);
                sink.write(mac, 0, mac.length);
            }
            SigningKey sk = agreement.signingKey();
            if (sk != null) {
                byte[] pk = sk.verifyingKey().encoded();
                byte[] sig = sk.sign(signatureInput(transcript, fixed, mac));
                sink.write(pk, 0, pk.length);
                sink.write(sig, 0, sig.length);
            }
        }
        sink.flush();
        finished = true;
        return new StreamTrailer(sequence, transcript == null ? null : transcript.clone(), mac != null, false,
                agreement.signingKey() == null ? null : agreement.signingKey().verifyingKey(), sink.position());
    }

    /**
     * Writes a whole stream: opens the writer, lets the encoder write the sections, writes the trailer.
     *
     * @param channel blocking destination
     * @param agreement the handshake result
     * @param encoder writes the sections in {@code writer.formatVersion()}
     * @return the trailer as written
     * @throws IOException if the encoder or the channel fails; the stream then has no trailer
     */
    public static StreamTrailer write(WritableByteChannel channel, HandshakeAgreement agreement, StateEncoder encoder) throws IOException {
        try (DeviceStateWriter w = open(channel, agreement)) {
            encoder.encode(w);
            return w.finish();
        }
    }

    static byte[] signatureInput(byte[] transcript, byte[] fixed, byte[] mac) {
        int n = Crypto.SIGNATURE_LABEL.length + transcript.length + fixed.length + (mac == null ? 0 : mac.length);
        byte[] m = new byte[n];
        int p = 0;
        System.arraycopy(Crypto.SIGNATURE_LABEL, 0, m, p, Crypto.SIGNATURE_LABEL.length);
        p += Crypto.SIGNATURE_LABEL.length;
        System.arraycopy(transcript, 0, m, p, transcript.length);
        p += transcript.length;
        System.arraycopy(fixed, 0, m, p, fixed.length);
        p += fixed.length;
        if (mac != null) {
            System.arraycopy(mac, 0, m, p, mac.length);
        }
        return m;
    }

    /**
     * Closes the writer. Without {@link #finish()} the stream stays incomplete (no trailer) and no reader accepts it.
     */
    @Override
    public void close() {
        finished = true;
    }
}
