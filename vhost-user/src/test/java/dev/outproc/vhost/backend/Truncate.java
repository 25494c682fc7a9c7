package dev.outproc.vhost.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * {@code ftruncate(2)} as a hostile front-end calls it on its own copy of a shared file (core's native
 * bindings are not exported to this module).
 */
final class Truncate {
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_VALUE = STATE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle FTRUNCATE = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("ftruncate").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG), ERRNO);

    private Truncate() {
    }

    /** {@return 0 when the file now has {@code length} bytes, else the errno (EPERM = 1 for a sealed file)} */
    static int ftruncate(int fd, long length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(STATE);
            int rc = (int) FTRUNCATE.invokeExact(state, fd, length);
            return rc == 0 ? 0 : (int) ERRNO_VALUE.get(state, 0L);
        } catch (Throwable t) {
            throw new AssertionError("ftruncate downcall failed", t);
        }
    }
}
