package dev.outproc.migration.stream;

/**
 * Wire type of a field value (spec section "Field encoding"). The code is the byte that follows the field tag.
 *
 * <pre>
 *  code type     value bytes (little-endian)
 *  0x00 END      none; closes a RECORD
 *  0x01 BOOL     1: 0x00 or 0x01, nothing else
 *  0x02 INT8     1
 *  0x03 INT16    2
 *  0x04 INT32    4
 *  0x05 INT64    8
 *  0x06 BYTES    u64 length, then the bytes
 *  0x07 STRING   u32 length, then that many bytes of UTF-8
 *  0x08 ARRAY    u8 element type, u32 count, then count values without tags
 *  0x09 RECORD   fields, then an END field (tag 0, type 0x00)
 * </pre>
 */
public enum FieldType {
    /** Closes a record. */
    END(0x00),
    /** Boolean, one byte, 0 or 1. */
    BOOL(0x01),
    /** 8-bit integer. */
    INT8(0x02),
    /** 16-bit integer. */
    INT16(0x03),
    /** 32-bit integer. */
    INT32(0x04),
    /** 64-bit integer. */
    INT64(0x05),
    /** Byte string with a 64-bit length: also used for large blobs. */
    BYTES(0x06),
    /** UTF-8 string with a 32-bit length. */
    STRING(0x07),
    /** Homogeneous array. */
    ARRAY(0x08),
    /** Nested record of fields. */
    RECORD(0x09);

    private static final FieldType[] BY_CODE = values();

    private final int code;

    FieldType(int code) {
        this.code = code;
    }

    /**
     * Returns the wire code.
     *
     * @return the byte written after the tag
     */
    public int code() {
        return code;
    }

    /**
     * Returns the type for a wire code.
     *
     * @param code the byte read after the tag
     * @return the type, or null if the code is not defined
     */
    public static FieldType ofCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /**
     * Returns whether values of this type are fixed-width integers.
     *
     * @return true for INT8 to INT64
     */
    public boolean isInteger() {
        return this == INT8 || this == INT16 || this == INT32 || this == INT64;
    }
}
