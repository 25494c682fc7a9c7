package dev.outproc.vhost.message;

import dev.outproc.core.memory.Layouts;
import java.lang.foreign.ValueLayout;

/**
 * The value layouts of vhost-user messages: unaligned, in the machine's native byte order, as the
 * specification demands ("All numbers are in the machine native byte order", vhost-user.rst, Message
 * Specification). Messages sit at arbitrary offsets of receive buffers, so the layouts are unaligned and
 * support only plain get/set.
 *
 * <p>On the platforms outproc targets (x86-64, aarch64, riscv64 in their Linux ABIs) the native order is
 * little-endian; golden test vectors are written in that order.
 *
 * <p>The layouts are core's {@link Layouts} under the names the message codecs use; this class adds the
 * range checks of the encoders.
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
