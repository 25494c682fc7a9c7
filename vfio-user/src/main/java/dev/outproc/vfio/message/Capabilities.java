package dev.outproc.vfio.message;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import dev.outproc.core.fd.Errno;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;

/**
 * The capabilities of a {@code VFIO_USER_VERSION} message (vfio-user.rst, "Version"): the JSON object
 * {@code {"capabilities": {...}}} after the version numbers, NUL-terminated. Parsed with Jackson's
 * streaming parser, strictly: at most {@link #MAX_JSON_BYTES} bytes and {@link #MAX_DEPTH} levels, no
 * duplicate keys, nothing after the object, every known key with its type (integers non-negative and in
 * range). Keys this version does not know are skipped (a newer peer may propose them) and counted.
 *
 * <p>Besides the specification's keys this reads the legacy {@code migration} object ({@code pgsize},
 * {@code max_bitmap_size}) that QEMU 10.x and libvfio-user still send. A reply should hold only keys the
 * other side proposed: QEMU refuses a reply with a key it does not know ({@link #answerTo}).
 *
 * @param present which keys were present (bits {@code KEY_*})
 * @param maxMsgFds {@code max_msg_fds}: the most fds the sender receives in one message (default 1)
 * @param maxDataXferSize {@code max_data_xfer_size}: the largest data transfer (default 1 MiB)
 * @param maxDmaMaps {@code max_dma_maps}: the most DMA mappings at once (default 65535)
 * @param pgsizes {@code pgsizes}: the DMA page sizes or'ed together (default 4096)
 * @param twinSocketSupported {@code twin_socket.supported}
 * @param twinSocketFdIndex {@code twin_socket.fd_index}, or -1
 * @param writeMultiple {@code write_multiple}
 * @param migrationPgsize legacy {@code migration.pgsize}, or 0
 * @param migrationMaxBitmapSize legacy {@code migration.max_bitmap_size}, or 0
 * @param unknownKeys how many keys were skipped
 */
public record Capabilities(int present, int maxMsgFds, long maxDataXferSize, long maxDmaMaps, long pgsizes,
                           boolean twinSocketSupported, int twinSocketFdIndex, boolean writeMultiple,
                           long migrationPgsize, long migrationMaxBitmapSize, int unknownKeys) {
    /** Bit of {@code max_msg_fds}. */
    public static final int KEY_MAX_MSG_FDS = 1;
    /** Bit of {@code max_data_xfer_size}. */
    public static final int KEY_MAX_DATA_XFER_SIZE = 1 << 1;
    /** Bit of {@code max_dma_maps}. */
    public static final int KEY_MAX_DMA_MAPS = 1 << 2;
    /** Bit of {@code pgsizes}. */
    public static final int KEY_PGSIZES = 1 << 3;
    /** Bit of {@code twin_socket}. */
    public static final int KEY_TWIN_SOCKET = 1 << 4;
    /** Bit of {@code write_multiple}. */
    public static final int KEY_WRITE_MULTIPLE = 1 << 5;
    /** Bit of the legacy {@code migration} object. */
    public static final int KEY_MIGRATION = 1 << 6;

    /** Default {@code max_msg_fds} when absent. */
    public static final int DEFAULT_MAX_MSG_FDS = 1;
    /** Default {@code max_data_xfer_size} when absent. */
    public static final long DEFAULT_MAX_DATA_XFER_SIZE = 1 << 20;
    /** Default {@code max_dma_maps} when absent. */
    public static final long DEFAULT_MAX_DMA_MAPS = 65535;
    /** Default {@code pgsizes} when absent. */
    public static final long DEFAULT_PGSIZES = 4096;
    /** The kernel's limit of fds in one message ({@code SCM_MAX_FD}); a larger {@code max_msg_fds} is refused. */
    public static final int MAX_MSG_FDS_LIMIT = 253;
    /** Largest accepted JSON text, NUL excluded. */
    public static final int MAX_JSON_BYTES = 4096;
    /** Deepest accepted nesting: top object, capabilities, migration or twin_socket, and one level more inside a skipped unknown key. */
    public static final int MAX_DEPTH = 4;

    /** The capabilities of a peer that sent none: every default. */
    public static final Capabilities DEFAULTS = new Capabilities(0, DEFAULT_MAX_MSG_FDS, DEFAULT_MAX_DATA_XFER_SIZE,
            DEFAULT_MAX_DMA_MAPS, DEFAULT_PGSIZES, false, -1, false, 0, 0, 0);

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(MAX_DEPTH)
                    .maxStringLength(MAX_JSON_BYTES)
                    .maxNumberLength(24)
                    .maxNameLength(64)
                    .maxDocumentLength(MAX_JSON_BYTES)
                    .build())
            .build();

    /**
     * {@return whether the given key bit was present}
     *
     * @param key a {@code KEY_*} bit
     */
    public boolean has(int key) {
        return (present & key) != 0;
    }

    /**
     * Parses the version data of a VERSION payload: empty (or a lone NUL) means defaults; otherwise UTF-8 JSON ending in
     * exactly one NUL.
     *
     * @param segment the buffer
     * @param offset where the data starts
     * @param length the data length, NUL included
     * @return the capabilities
     * @throws VfioUserProtocolException (EINVAL) when the data is not NUL-terminated, too long, malformed or
     *         holds a known key with a wrong type or value
     */
    public static Capabilities parse(MemorySegment segment, long offset, long length) throws VfioUserProtocolException {
        if (length == 0 || length == 1 && segment.get(WireLayout.NATIVE_U8, offset) == 0) {
            return DEFAULTS; // no data, or an empty NUL-terminated string
        }
        if (length - 1 > MAX_JSON_BYTES) {
            throw invalid("version data of " + length + " bytes exceeds " + (MAX_JSON_BYTES + 1));
        }
        if (segment.get(WireLayout.NATIVE_U8, offset + length - 1) != 0) {
            throw invalid("version data is not NUL-terminated, length=" + length);
        }
        byte[] json = segment.asSlice(offset, length - 1).toArray(WireLayout.NATIVE_U8);
        for (byte b : json) {
            if (b == 0) {
                throw invalid("version data holds a NUL before its end");
            }
        }
        return parse(json);
    }

    /**
     * Parses capabilities JSON (without the NUL).
     *
     * @param json UTF-8 JSON text
     * @return the capabilities
     * @throws VfioUserProtocolException (EINVAL) when malformed or over a limit
     */
    public static Capabilities parse(byte[] json) throws VfioUserProtocolException {
        Builder b = new Builder();
        try (JsonParser p = FACTORY.createParser(json)) {
            expect(p.nextToken(), JsonToken.START_OBJECT, "the version data");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken value = p.nextToken();
                if (name.equals("capabilities")) {
                    expect(value, JsonToken.START_OBJECT, "capabilities");
                    parseCapabilities(p, b);
                } else {
                    b.unknown++;
                    p.skipChildren();
                }
            }
            if (p.nextToken() != null) {
                throw invalid("content after the capabilities object");
            }
        } catch (VfioUserProtocolException e) {
            throw e;
        } catch (JsonProcessingException e) {
            throw invalid("malformed capabilities JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return b.build();
    }

    private static void parseCapabilities(JsonParser p, Builder b) throws IOException {
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken value = p.nextToken();
            switch (name) {
                case "max_msg_fds" -> {
                    long v = unsigned(p, value, name, MAX_MSG_FDS_LIMIT);
                    b.present |= KEY_MAX_MSG_FDS;
                    b.maxMsgFds = (int) v;
                }
                case "max_data_xfer_size" -> {
                    b.maxDataXferSize = unsigned(p, value, name, WireLayout.U32_MAX);
                    b.present |= KEY_MAX_DATA_XFER_SIZE;
                }
                case "max_dma_maps" -> {
                    b.maxDmaMaps = unsigned(p, value, name, WireLayout.U32_MAX);
                    b.present |= KEY_MAX_DMA_MAPS;
                }
                case "pgsizes" -> {
                    b.pgsizes = unsigned(p, value, name, Long.MAX_VALUE);
                    b.present |= KEY_PGSIZES;
                }
                case "write_multiple" -> {
                    b.writeMultiple = bool(value, name);
                    b.present |= KEY_WRITE_MULTIPLE;
                }
                case "twin_socket" -> {
                    expect(value, JsonToken.START_OBJECT, name);
                    b.present |= KEY_TWIN_SOCKET;
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String inner = p.currentName();
                        JsonToken v = p.nextToken();
                        switch (inner) {
                            case "supported" -> b.twinSocketSupported = bool(v, "twin_socket.supported");
                            case "fd_index" -> b.twinSocketFdIndex =
                                    (int) unsigned(p, v, "twin_socket.fd_index", MAX_MSG_FDS_LIMIT - 1);
                            default -> {
                                b.unknown++;
                                p.skipChildren();
                            }
                        }
                    }
                }
                case "migration" -> {
                    expect(value, JsonToken.START_OBJECT, name);
                    b.present |= KEY_MIGRATION;
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String inner = p.currentName();
                        JsonToken v = p.nextToken();
                        switch (inner) {
                            case "pgsize" -> b.migrationPgsize = unsigned(p, v, "migration.pgsize", Long.MAX_VALUE);
                            case "max_bitmap_size" -> b.migrationMaxBitmapSize =
                                    unsigned(p, v, "migration.max_bitmap_size", Long.MAX_VALUE);
                            default -> {
                                b.unknown++;
                                p.skipChildren();
                            }
                        }
                    }
                }
                default -> {
                    b.unknown++;
                    p.skipChildren();
                }
            }
        }
    }

    private static long unsigned(JsonParser p, JsonToken token, String name, long max) throws IOException {
        if (token != JsonToken.VALUE_NUMBER_INT) {
            throw invalid(name + " must be an integer, got " + token);
        }
        BigInteger v = p.getBigIntegerValue();
        if (v.signum() < 0 || v.compareTo(BigInteger.valueOf(max)) > 0) {
            throw invalid(name + " must be in [0, " + max + "], " + name + "=" + v);
        }
        return v.longValue();
    }

    private static boolean bool(JsonToken token, String name) throws VfioUserProtocolException {
        if (token == JsonToken.VALUE_TRUE) {
            return true;
        }
        if (token == JsonToken.VALUE_FALSE) {
            return false;
        }
        throw invalid(name + " must be a boolean, got " + token);
    }

    private static void expect(JsonToken got, JsonToken want, String what) throws VfioUserProtocolException {
        if (got != want) {
            throw invalid(what + " must be a JSON object, got " + got);
        }
    }

    private static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }

    /**
     * The capabilities a server answers with: its own limits, but only keys the client proposed (the
     * specification's subset rule; QEMU refuses unknown keys), {@code max_msg_fds} and
     * {@code max_data_xfer_size} always (every client knows them), twin socket only through
     * {@link #withTwinSocket} once the server has made the socket pair.
     *
     * @param proposed what the client sent
     * @return the reply's capabilities
     */
    public Capabilities answerTo(Capabilities proposed) {
        int keys = (present & (KEY_MAX_MSG_FDS | KEY_MAX_DATA_XFER_SIZE))
                | (present & proposed.present & (KEY_MAX_DMA_MAPS | KEY_PGSIZES | KEY_WRITE_MULTIPLE | KEY_MIGRATION));
        return new Capabilities(keys, maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, false, -1,
                writeMultiple && proposed.writeMultiple, migrationPgsize, migrationMaxBitmapSize, 0);
    }

    /**
     * These capabilities with twin-socket mode enabled: {@code "twin_socket": {"supported": true,
     * "fd_index": N}}, the index of the server-to-client socket in the reply's fd array.
     *
     * @param fdIndex the index of the socket in the fd array sent with the message
     * @return the capabilities
     */
    public Capabilities withTwinSocket(int fdIndex) {
        if (fdIndex < 0 || fdIndex >= MAX_MSG_FDS_LIMIT) {
            throw new IllegalArgumentException("twin_socket.fd_index out of range: " + fdIndex);
        }
        return new Capabilities(present | KEY_TWIN_SOCKET, maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, true, fdIndex,
                writeMultiple, migrationPgsize, migrationMaxBitmapSize, unknownKeys);
    }

    /** {@return the JSON text of the present keys, without the NUL} */
    public byte[] toJson() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            g.writeStartObject();
            g.writeObjectFieldStart("capabilities");
            if (has(KEY_MAX_MSG_FDS)) {
                g.writeNumberField("max_msg_fds", maxMsgFds);
            }
            if (has(KEY_MAX_DATA_XFER_SIZE)) {
                g.writeNumberField("max_data_xfer_size", maxDataXferSize);
            }
            if (has(KEY_MAX_DMA_MAPS)) {
                g.writeNumberField("max_dma_maps", maxDmaMaps);
            }
            if (has(KEY_PGSIZES)) {
                g.writeNumberField("pgsizes", pgsizes);
            }
            if (has(KEY_MIGRATION)) {
                g.writeObjectFieldStart("migration");
                g.writeNumberField("pgsize", migrationPgsize);
                if (migrationMaxBitmapSize != 0) {
                    g.writeNumberField("max_bitmap_size", migrationMaxBitmapSize);
                }
                g.writeEndObject();
            }
            if (has(KEY_TWIN_SOCKET)) {
                g.writeObjectFieldStart("twin_socket");
                g.writeBooleanField("supported", twinSocketSupported);
                if (twinSocketFdIndex >= 0) {
                    g.writeNumberField("fd_index", twinSocketFdIndex);
                }
                g.writeEndObject();
            }
            if (has(KEY_WRITE_MULTIPLE)) {
                g.writeBooleanField("write_multiple", writeMultiple);
            }
            g.writeEndObject();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** {@return the JSON text} */
    @Override
    public String toString() {
        return new String(toJson(), StandardCharsets.UTF_8);
    }

    /**
     * Capabilities with the given keys; absent ones keep their defaults.
     *
     * @return a builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link Capabilities}; every setter marks its key present. */
    public static final class Builder {
        private int present;
        private int maxMsgFds = DEFAULT_MAX_MSG_FDS;
        private long maxDataXferSize = DEFAULT_MAX_DATA_XFER_SIZE;
        private long maxDmaMaps = DEFAULT_MAX_DMA_MAPS;
        private long pgsizes = DEFAULT_PGSIZES;
        private boolean twinSocketSupported;
        private int twinSocketFdIndex = -1;
        private boolean writeMultiple;
        private long migrationPgsize;
        private long migrationMaxBitmapSize;
        private int unknown;

        private Builder() {
        }

        /**
         * Sets max_msg_fds.
         *
         * @param v max_msg_fds
         * @return this builder
         */
        public Builder maxMsgFds(int v) {
            if (v < 0 || v > MAX_MSG_FDS_LIMIT) {
                throw new IllegalArgumentException("max_msg_fds must be in [0, 253], max_msg_fds=" + v);
            }
            maxMsgFds = v;
            present |= KEY_MAX_MSG_FDS;
            return this;
        }

        /**
         * Sets max_data_xfer_size.
         *
         * @param v max_data_xfer_size
         * @return this builder
         */
        public Builder maxDataXferSize(long v) {
            WireLayout.checkU32("max_data_xfer_size", v);
            maxDataXferSize = v;
            present |= KEY_MAX_DATA_XFER_SIZE;
            return this;
        }

        /**
         * Sets max_dma_maps.
         *
         * @param v max_dma_maps
         * @return this builder
         */
        public Builder maxDmaMaps(long v) {
            WireLayout.checkU32("max_dma_maps", v);
            maxDmaMaps = v;
            present |= KEY_MAX_DMA_MAPS;
            return this;
        }

        /**
         * Sets pgsizes.
         *
         * @param v pgsizes
         * @return this builder
         */
        public Builder pgsizes(long v) {
            pgsizes = v;
            present |= KEY_PGSIZES;
            return this;
        }

        /**
         * Sets write_multiple.
         *
         * @param v write_multiple
         * @return this builder
         */
        public Builder writeMultiple(boolean v) {
            writeMultiple = v;
            present |= KEY_WRITE_MULTIPLE;
            return this;
        }

        /**
         * Sets twin_socket.supported.
         *
         * @param supported twin_socket.supported
         * @param fdIndex twin_socket.fd_index or -1
         * @return this builder
         */
        public Builder twinSocket(boolean supported, int fdIndex) {
            twinSocketSupported = supported;
            twinSocketFdIndex = fdIndex;
            present |= KEY_TWIN_SOCKET;
            return this;
        }

        /**
         * Sets migration.pgsize.
         *
         * @param pgsize migration.pgsize
         * @param maxBitmapSize migration.max_bitmap_size or 0
         * @return this builder
         */
        public Builder migration(long pgsize, long maxBitmapSize) {
            migrationPgsize = pgsize;
            migrationMaxBitmapSize = maxBitmapSize;
            present |= KEY_MIGRATION;
            return this;
        }

        /** {@return the capabilities} */
        public Capabilities build() {
            return new Capabilities(present, maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, twinSocketSupported,
                    twinSocketFdIndex, writeMultiple, migrationPgsize, migrationMaxBitmapSize, unknown);
        }
    }
}
