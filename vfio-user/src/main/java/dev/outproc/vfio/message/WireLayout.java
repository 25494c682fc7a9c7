package dev.outproc.vfio.message;

import dev.outproc.core.memory.Layouts;
import java.lang.foreign.ValueLayout;

/**
 * The value layouts of vfio-user messages: unaligned, in the host's byte order ("all data is in the
 * endianness of the host system", vfio-user.rst, "Protocol Specification"). Messages sit at arbitrary
 * offsets of receive buffers, so the layouts are unaligned and support only plain get/set. Golden test
 * vectors are written little-endian, the order of every platform outproc targets.
 *
 * <p>The layouts are core's {@link Layouts} under the names the message codecs use; the range checks of
 * the encoders are core's as well.
 */
public final class WireLayout {
    /** Unsigned 8-bit field. */
    public static final ValueLayout.OfByte NATIVE_U8 = Layouts.U8;
    /** Unsigned 16-bit field, native order, unaligned. */
    public static final ValueLayout.OfShort NATIVE_U16 = Layouts.NATIVE_U16;
    /** Unsigned 32-bit field, native order, unaligned. */
    public static final ValueLayout.OfInt NATIVE_U32 = Layouts.NATIVE_U32;
    /** Unsigned 64-bit field, native order, unaligned. */
    public static final ValueLayout.OfLong NATIVE_U64 = Layouts.NATIVE_U64;

    /** The largest value a u32 field can hold. */
    public static final long U32_MAX = Layouts.U32_MAX;

    private WireLayout() {
    }

    static void checkU32(String field, long value) {
        Layouts.requireU32(field, value);
    }

    static void checkU16(String field, int value) {
        Layouts.requireU16(field, value);
    }

    static void checkU8(String field, int value) {
        Layouts.requireU8(field, value);
    }
}
