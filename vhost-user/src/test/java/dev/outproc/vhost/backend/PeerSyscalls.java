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
 * System calls a hostile front-end makes on its own copies of shared fds: {@code ftruncate(2)} on a memory
 * file, {@code fcntl(F_SETFL)} on an eventfd (core's native bindings are not exported to this module).
 */
final class PeerSyscalls {
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_VALUE = STATE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle FTRUNCATE = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("ftruncate").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG), ERRNO);

    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    private static final int O_NONBLOCK = 04000;
    private static final MethodHandle FCNTL = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("fcntl").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            Linker.Option.firstVariadicArg(2));

    private PeerSyscalls() {
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

    /**
     * Clears {@code O_NONBLOCK} on an fd's open file description, which every process holding a copy shares.
     *
     * @return whether the flag is now clear
     */
    static boolean clearNonBlocking(int fd) {
        try {
            int flags = (int) FCNTL.invokeExact(fd, F_GETFL, 0);
            int rc = (int) FCNTL.invokeExact(fd, F_SETFL, flags & ~O_NONBLOCK);
            return rc == 0 && ((int) FCNTL.invokeExact(fd, F_GETFL, 0) & O_NONBLOCK) == 0;
        } catch (Throwable t) {
            throw new AssertionError("fcntl downcall failed", t);
        }
    }
}
