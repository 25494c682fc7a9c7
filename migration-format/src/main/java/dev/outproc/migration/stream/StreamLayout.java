package dev.outproc.migration.stream;

/**
 * Byte layout of the stream (normative text: {@code migration-format/docs/stream-format.md}). All integers are
 * little-endian.
 *
 * <pre>
 * Header (at offset 0, headerLength bytes, covered by the transcript)
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +---------------------------------------------------------------+
 * |           magic 4F 50 4D 53 0D 0A 1A 0A  ("OPMS\r\n\x1a\n")      |  0
 * +-------------------------------+-------------------------------+
 * |  stream version (u16) = 1     |  flags (u16)                  |  8
 * +-------------------------------+-------------------------------+
 * |  header length (u32), from offset 0, 94..4096                 | 12
 * +---------------------------------------------------------------+
 * |  format version (u32) of the format class                     | 16
 * +---------------------------------------------------------------+
 * |  reserved (u32) = 0                                           | 20
 * +---------------------------------------------------------------+
 * |  nonce (32 bytes)                                             | 24
 * |  handshake hash (32 bytes)                                    | 56
 * +-------------------------------+-------------------------------+
 * |  model id length (u16) + UTF-8, format class length (u16) +   | 88
 * |  UTF-8, implementation id length (u16) + UTF-8, extension     |
 * +---------------------------------------------------------------+
 *
 * Section frame
 * +---------------+---------------+-------------------------------+
 * | 0x53 'S'      | section flags | section version (u16)         |  0
 * +---------------+---------------+-------------------------------+
 * | section id (u32)                                              |  4
 * +---------------------------------------------------------------+
 * | sequence number (u32), 0 for the first section                |  8
 * +---------------------------------------------------------------+
 * | chunks: length (u32, 1..16 MiB) + bytes; a zero length ends   | 12
 * +---------------------------------------------------------------+
 * | SHA-256 of the frame from offset 0 through the zero length    |  (DIGESTS)
 * +---------------------------------------------------------------+
 *
 * Trailer
 * +---------------+---------------+-------------------------------+
 * | 0x54 'T'      | reserved = 0  | flags (u16), same as header   |  0
 * +---------------+---------------+-------------------------------+
 * | section count (u32)                                           |  4
 * +---------------------------------------------------------------+
 * | transcript (32, DIGESTS) | MAC (32, MAC) | Ed25519 public key  |  8
 * | (32) and signature (64) (SIGNATURE); then end of stream        |
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class StreamLayout {
    /** The eight magic bytes; the CR LF and 0x1A catch text-mode mangling as PNG's signature does. */
    public static final byte[] MAGIC = {0x4F, 0x50, 0x4D, 0x53, 0x0D, 0x0A, 0x1A, 0x0A};
    /** The stream format version this library writes and reads. */
    public static final int STREAM_VERSION = 1;
    /** Offset of the stream version. */
    public static final int VERSION_OFFSET = 8;
    /** Offset of the header flags. */
    public static final int FLAGS_OFFSET = 10;
    /** Offset of the header length. */
    public static final int HEADER_LENGTH_OFFSET = 12;
    /** Offset of the format version. */
    public static final int FORMAT_VERSION_OFFSET = 16;
    /** Offset of the reserved word. */
    public static final int RESERVED_OFFSET = 20;
    /** Offset of the nonce. */
    public static final int NONCE_OFFSET = 24;
    /** Offset of the handshake hash. */
    public static final int HANDSHAKE_HASH_OFFSET = 56;
    /** Offset of the first variable field. */
    public static final int VARIABLE_OFFSET = 88;
    /** Smallest header: fixed part plus three empty strings. */
    public static final int MIN_HEADER_BYTES = VARIABLE_OFFSET + 6;

    /** Header flag: per-section digests and the transcript are present. */
    public static final int FLAG_DIGESTS = 1;
    /** Header flag: the trailer carries a MAC. */
    public static final int FLAG_MAC = 2;
    /** Header flag: the trailer carries an Ed25519 public key and signature. */
    public static final int FLAG_SIGNATURE = 4;
    /** All defined header flags. */
    public static final int KNOWN_FLAGS = FLAG_DIGESTS | FLAG_MAC | FLAG_SIGNATURE;

    /** Frame type of a section. */
    public static final int FRAME_SECTION = 0x53;
    /** Frame type of the trailer. */
    public static final int FRAME_TRAILER = 0x54;
    /** Bytes of a section frame header. */
    public static final int SECTION_HEADER_BYTES = 12;
    /** Section flag: a reader that does not know the section must refuse the stream. */
    public static final int SECTION_MUST_UNDERSTAND = 1;
    /** Section flag: the body is an envelope (vendor id, schema version, payload). */
    public static final int SECTION_ENVELOPE = 2;
    /** All defined section flags. */
    public static final int KNOWN_SECTION_FLAGS = SECTION_MUST_UNDERSTAND | SECTION_ENVELOPE;
    /** Fixed bytes of the trailer before the transcript. */
    public static final int TRAILER_FIXED_BYTES = 8;

    /** First must-understand field tag (stream-format.md §5.4): an optional subsection a reader may not skip. */
    public static final int MUST_UNDERSTAND_TAG = 0x8000;

    /** Envelope field tag: vendor id (STRING). */
    public static final int ENVELOPE_VENDOR_TAG = 1;
    /** Envelope field tag: blob schema version (INT32). */
    public static final int ENVELOPE_SCHEMA_TAG = 2;
    /** Envelope field tag: payload (BYTES). */
    public static final int ENVELOPE_PAYLOAD_TAG = 3;

    /** Size of the chunks a writer emits for small fields. */
    public static final int WRITE_CHUNK_BYTES = 64 * 1024;
    /** Size of the chunks a writer emits for large blobs. */
    public static final int WRITE_BLOB_CHUNK_BYTES = 1024 * 1024;

    private StreamLayout() {}
}
