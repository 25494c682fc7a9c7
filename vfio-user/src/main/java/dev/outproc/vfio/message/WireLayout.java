package dev.outproc.vfio.message;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The value layouts of vfio-user messages: unaligned, in the host's byte order ("all data is in the
 * endianness of the host system", vfio-user.rst, "Protocol Specification"). Messages sit at arbitrary
 * offsets of receive buffers, so the layouts are unaligned and support only plain get/set. Golden test
 * vectors are written little-endian, the order of every platform outproc targets.
 */
public final class WireLayout {
    /** Unsigned 8-bit field. */
    public static final ValueLayout.OfByte NATIVE_U8 = ValueLayout.JAVA_BYTE;
    /** Unsigned 16-bit field, native order, unaligned. */
    public static final ValueLayout.OfShort NATIVE_U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    /** Unsigned 32-bit field, native order, unaligned. */
    public static final ValueLayout.OfInt NATIVE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    /** Unsigned 64-bit field, native order, unaligned. */
    public static final ValueLayout.OfLong NATIVE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    /** The largest value a u32 field can hold. */
    public static final long U32_MAX = 0xFFFF_FFFFL;

    private WireLayout() {
    }

    static void checkU32(String field, long value) {
        if (value < 0 || value > U32_MAX) {
            throw new IllegalArgumentException(field + " must fit in 32 unsigned bits, " + field + "=" + value);
        }
    }

    static void checkU16(String field, int value) {
        if (value < 0 || value > 0xFFFF) {
            throw new IllegalArgumentException(field + " must fit in 16 unsigned bits, " + field + "=" + value);
        }
    }

    static void checkU8(String field, int value) {
        if (value < 0 || value > 0xFF) {
            throw new IllegalArgumentException(field + " must fit in 8 unsigned bits, " + field + "=" + value);
        }
    }
}
