package dev.outproc.core.internal.linux;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Linux system calls through FFM downcalls. Every handle is built once, in this class, and every
 * call goes through {@link #call}: it captures {@code errno} through
 * {@link Linker.Option#captureCallState(String...)}, applies the call's errno policy (retry on
 * {@link Errno#EINTR}, {@link Errno#EAGAIN} as "nothing now") and turns any other failure into a
 * {@link NativeException} naming the call, the errno and the arguments.
 *
 * <p>This is the only class of outproc that links native code; the restricted FFM methods it uses
 * need native access ({@code --enable-native-access=dev.outproc.core}, or {@code ALL-UNNAMED} on
 * the class path). Without the grant the first use fails with one clear message.
 */
@SuppressWarnings("restricted")
public final class Linux {
    /** Pages may be read. */
    public static final int PROT_READ = 0x1;
    /** Pages may be written. */
    public static final int PROT_WRITE = 0x2;
    /** Share this mapping. */
    public static final int MAP_SHARED = 0x01;
    /** Anonymous mapping. */
    public static final int MAP_ANONYMOUS = 0x20;
    /** Populate page tables. */
    public static final int MAP_POPULATE = 0x8000;
    /** memfd_create: close on exec. */
    public static final int MFD_CLOEXEC = 0x1;
    /** memfd_create: allow sealing. */
    public static final int MFD_ALLOW_SEALING = 0x2;
    /** fcntl: duplicate with close-on-exec. */
    public static final int F_DUPFD_CLOEXEC = 1030;
    /** fcntl: get descriptor flags. */
    public static final int F_GETFD = 1;
    /** fcntl: get status flags. */
    public static final int F_GETFL = 3;
    /** fcntl: set status flags. */
    public static final int F_SETFL = 4;
    /** fcntl: add seals. */
    public static final int F_ADD_SEALS = 1033;
    /** fcntl: get seals. */
    public static final int F_GET_SEALS = 1034;
    /** Seal: no more seals. */
    public static final int F_SEAL_SEAL = 0x1;
    /** Seal: no shrinking. */
    public static final int F_SEAL_SHRINK = 0x2;
    /** Seal: no growing. */
    public static final int F_SEAL_GROW = 0x4;
    /** Seal: no writing. */
    public static final int F_SEAL_WRITE = 0x8;
    /** Non-blocking status flag. */
    public static final int O_NONBLOCK = 0x800;
    /** Close-on-exec open flag. */
    public static final int O_CLOEXEC = 0x80000;
    /** eventfd: semaphore semantics. */
    public static final int EFD_SEMAPHORE = 0x1;
    /** eventfd: non-blocking. */
    public static final int EFD_NONBLOCK = 0x800;
    /** eventfd: close-on-exec. */
    public static final int EFD_CLOEXEC = 0x80000;
    /** epoll_create1: close-on-exec. */
    public static final int EPOLL_CLOEXEC = 0x80000;
    /** epoll_ctl: add. */
    public static final int EPOLL_CTL_ADD = 1;
    /** epoll_ctl: delete. */
    public static final int EPOLL_CTL_DEL = 2;
    /** epoll_ctl: modify. */
    public static final int EPOLL_CTL_MOD = 3;
    /** epoll: readable. */
    public static final int EPOLLIN = 0x001;
    /** epoll: writable. */
    public static final int EPOLLOUT = 0x004;
    /** epoll: error. */
    public static final int EPOLLERR = 0x008;
    /** epoll: hang-up. */
    public static final int EPOLLHUP = 0x010;
    /** lseek: from the end. */
    public static final int SEEK_END = 2;
    /** lseek: from the start. */
    public static final int SEEK_SET = 0;
    /** Address family of Unix sockets. */
    public static final int AF_UNIX = 1;
    /** Stream socket type. */
    public static final int SOCK_STREAM = 1;
    /** socket type flag: close-on-exec. */
    public static final int SOCK_CLOEXEC = 0x80000;

    /**
     * {@code struct epoll_event}: x86-64 packs it to 12 bytes ({@code u32 events; u64 data}),
     * the other 64-bit ABIs align {@code data} to 8 (16 bytes).
     */
    public static final long EPOLL_EVENT_SIZE;
    /** Offset of {@code data} in {@code struct epoll_event}. */
    public static final long EPOLL_EVENT_DATA_OFFSET;

    private static final String NATIVE_ACCESS_HINT =
            "outproc needs native access for its Linux system calls: run java with "
                    + "--enable-native-access=dev.outproc.core (module path) or "
                    + "--enable-native-access=ALL-UNNAMED (class path), or add "
                    + "'Enable-Native-Access: ALL-UNNAMED' to the manifest of an executable jar";

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MemoryLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");
    private static final ThreadLocal<MemorySegment> CAPTURE_STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));
    private static final ThreadLocal<MemorySegment> SCRATCH =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(256, 8));

    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MEMFD_CREATE;
    private static final MethodHandle FTRUNCATE;
    private static final MethodHandle LSEEK;
    private static final MethodHandle EVENTFD;
    private static final MethodHandle READ;
    private static final MethodHandle WRITE;
    private static final MethodHandle PREAD;
    private static final MethodHandle PWRITE;
    private static final MethodHandle CLOSE;
    private static final MethodHandle FCNTL;
    private static final MethodHandle EPOLL_CREATE1;
    private static final MethodHandle EPOLL_CTL;
    private static final MethodHandle EPOLL_WAIT;
    private static final MethodHandle PIPE2;
    private static final MethodHandle SOCKETPAIR;
    private static final MethodHandle FSYNC;
    private static final MethodHandle FDATASYNC;
    private static final MethodHandle FALLOCATE;
    private static final MethodHandle GETPID;
    private static final MethodHandle FSTAT;
    private static final MethodHandle POLL;
    /** poll: readable. */
    public static final short POLLIN = 0x1;
    /** poll: writable. */
    public static final short POLLOUT = 0x4;
    /** poll (returned only): error condition. */
    public static final short POLLERR = 0x8;
    /** poll (returned only): hang-up. */
    public static final short POLLHUP = 0x10;
    /** poll (returned only): the fd is not open. */
    public static final short POLLNVAL = 0x20;
    /** Offset of {@code st_size} in {@code struct stat} (48 on x86-64 and on the generic 64-bit layout). */
    private static final long STAT_SIZE_OFFSET = 48;

    static {
        if (!Linux.class.getModule().isNativeAccessEnabled()) {
            System.getLogger("dev.outproc.core").log(System.Logger.Level.WARNING, NATIVE_ACCESS_HINT);
        }
        boolean x86 = System.getProperty("os.arch", "").matches("amd64|x86_64");
        EPOLL_EVENT_SIZE = x86 ? 12 : 16;
        EPOLL_EVENT_DATA_OFFSET = x86 ? 4 : 8;
        try {
            MMAP = handle("mmap", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
            MUNMAP = handle("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
            MEMFD_CREATE = handle("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
            FTRUNCATE = handle("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
            LSEEK = handle("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
            EVENTFD = handle("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
            READ = handle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
            WRITE = handle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
            PREAD = handle("pread", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
            PWRITE = handle("pwrite", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
            CLOSE = handle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
            FCNTL = LINKER.downcallHandle(symbol("fcntl"), FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG),
                    CAPTURE, Linker.Option.firstVariadicArg(2));
            EPOLL_CREATE1 = handle("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
            EPOLL_CTL = handle("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
            EPOLL_WAIT = handle("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
            PIPE2 = handle("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
            SOCKETPAIR = handle("socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
            FSYNC = handle("fsync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
            FDATASYNC = handle("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
            FALLOCATE = handle("fallocate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
            GETPID = LINKER.downcallHandle(symbol("getpid"), FunctionDescriptor.of(JAVA_INT));
            FSTAT = handle("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
            POLL = handle("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        } catch (IllegalCallerException e) {
            throw new IllegalCallerException(NATIVE_ACCESS_HINT, e);
        }
    }

    private static final FdDowncall READ_CALL = (st, fd, buffer, length, unused) ->
            (long) READ.invokeExact(st, fd, buffer, length);
    private static final FdDowncall WRITE_CALL = (st, fd, buffer, length, unused) ->
            (long) WRITE.invokeExact(st, fd, buffer, length);
    private static final FdDowncall PREAD_CALL = (st, fd, buffer, length, position) ->
            (long) PREAD.invokeExact(st, fd, buffer, length, position);
    private static final FdDowncall PWRITE_CALL = (st, fd, buffer, length, position) ->
            (long) PWRITE.invokeExact(st, fd, buffer, length, position);
    private static final FdDowncall EPOLL_WAIT_CALL = (st, epfd, events, maxEvents, timeoutMillis) ->
            (int) EPOLL_WAIT.invokeExact(st, epfd, events, (int) maxEvents, (int) timeoutMillis);
    /** The fd is inside the {@code struct pollfd}; it is an argument only for the description. */
    private static final FdDowncall POLL_CALL = (st, fd, pollfd, events, timeoutMillis) ->
            (int) POLL.invokeExact(st, pollfd, 1L, (int) timeoutMillis);

    private Linux() {
    }

    private static MemorySegment symbol(String name) {
        SymbolLookup lookup = LINKER.defaultLookup();
        return lookup.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
    }

    static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(symbol(name), descriptor, CAPTURE);
    }

    /**
     * A downcall with its arguments bound; it receives the segment its {@code errno} is captured into.
     * Capturing lambdas allocate: use this form for calls off the hot path.
     */
    @FunctionalInterface
    interface Downcall {
        /**
         * Invokes the handle.
         *
         * @param captureState where {@code errno} goes
         * @return the call's result, negative on failure
         * @throws Throwable what {@code invokeExact} declares
         */
        long invoke(MemorySegment captureState) throws Throwable;
    }

    /**
     * A downcall of the hot path's shape, an fd, a segment and two numbers, written as a non-capturing
     * lambda (one shared instance): {@code read}, {@code write}, {@code poll}, {@code epoll_wait},
     * {@code sendmsg}, {@code recvmsg} allocate nothing.
     */
    @FunctionalInterface
    interface FdDowncall {
        /**
         * Invokes the handle.
         *
         * @param captureState where {@code errno} goes
         * @param fd the fd
         * @param segment the call's buffer or structure
         * @param a the first number (a length, a count, flags)
         * @param b the second number (a position, a timeout)
         * @return the call's result, negative on failure
         * @throws Throwable what {@code invokeExact} declares
         */
        long invoke(MemorySegment captureState, int fd, MemorySegment segment, long a, long b) throws Throwable;
    }

    /** Describes a failed call with its arguments; built only when a call fails. */
    @FunctionalInterface
    interface Description {
        /** {@return the call and its arguments, as text} */
        String text();
    }

    /** {@link #call} option: retry a call that {@code EINTR} interrupted. */
    static final int RETRY_EINTR = 1;
    /** {@link #call} option: {@code EAGAIN} is no failure; the call returns -1 (nothing to read, no room). */
    static final int EAGAIN_RETURNS_MINUS_ONE = 2;
    /** {@link #call} option: {@code EINTR} is no failure; the call returns 0 (close, epoll_wait). */
    static final int EINTR_RETURNS_ZERO = 4;

    /** {@link #afterFailure} outcome: call again. */
    private static final long RETRY = -2;
    /** {@link #afterFailure} outcome: the call failed. */
    private static final long FAILED = -3;

    /**
     * A downcall off the hot path (both {@code call} forms run through one loop, {@link #invoke}): invokes the call with this thread's capture segment, applies the
     * errno policy of {@code options}, and turns any other failure into a {@link NativeException} naming
     * the call, its arguments and the errno.
     *
     * @param downcall the bound call
     * @param description the call's text, for a failure
     * @param options {@link #RETRY_EINTR}, {@link #EAGAIN_RETURNS_MINUS_ONE}, {@link #EINTR_RETURNS_ZERO}
     * @return the call's non-negative result, or what {@code options} maps an errno to
     * @throws NativeException when the call fails
     */
    static long call(Downcall downcall, Description description, int options) throws NativeException {
        // A capturing adapter: this form allocates anyway (its lambdas capture their arguments).
        return invoke((st, fd, segment, a, b) -> downcall.invoke(st), 0, MemorySegment.NULL, 0, 0, options,
                description, null);
    }

    /**
     * {@link #call(Downcall, Description, int)} for the hot path: {@code downcall} is a non-capturing
     * lambda and the description is {@code format} filled with {@code fd}, {@code a} and {@code b}
     * ({@link String#format}), built only on failure. Allocates nothing when the call succeeds.
     *
     * @param downcall the call, a shared non-capturing lambda
     * @param format the call's text with three {@code %d} for {@code fd}, {@code a}, {@code b} (fewer are fine)
     * @param fd the fd argument
     * @param segment the segment argument
     * @param a the first number
     * @param b the second number
     * @param options as for {@link #call(Downcall, Description, int)}
     * @return the call's non-negative result, or what {@code options} maps an errno to
     * @throws NativeException when the call fails
     */
    static long call(FdDowncall downcall, String format, int fd, MemorySegment segment, long a, long b, int options)
            throws NativeException {
        return invoke(downcall, fd, segment, a, b, options, null, format);
    }

    /**
     * The loop both {@code call} forms share: invoke with this thread's capture segment, read the captured
     * errno on failure, apply the policy. The failure's text comes from {@code description} when it is
     * given, else from {@code format} and the arguments.
     */
    private static long invoke(FdDowncall downcall, int fd, MemorySegment segment, long a, long b, int options,
                               Description description, String format) throws NativeException {
        MemorySegment st = CAPTURE_STATE.get();
        while (true) {
            long rc;
            try {
                rc = downcall.invoke(st, fd, segment, a, b);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (rc >= 0) {
                return rc;
            }
            int errno = (int) ERRNO.get(st, 0L);
            long outcome = afterFailure(errno, options);
            if (outcome == FAILED) {
                String text = description != null ? description.text() : String.format(format, fd, a, b);
                throw new NativeException(text, errno);
            }
            if (outcome != RETRY) {
                return outcome;
            }
        }
    }

    /** The errno policy of every call: {@link #RETRY}, {@link #FAILED}, or the value the call returns. */
    private static long afterFailure(int errno, int options) {
        if (errno == Errno.EINTR && (options & RETRY_EINTR) != 0) {
            return RETRY;
        }
        if (errno == Errno.EINTR && (options & EINTR_RETURNS_ZERO) != 0) {
            return 0;
        }
        if (errno == Errno.EAGAIN && (options & EAGAIN_RETURNS_MINUS_ONE) != 0) {
            return -1;
        }
        return FAILED;
    }

    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    /** {@return a per-thread 256-byte, 8-aligned scratch segment for small call arguments} */
    public static MemorySegment scratch() {
        return SCRATCH.get();
    }

    /**
     * Maps {@code length} bytes of {@code fd} from {@code offset}.
     *
     * @return the raw address of the mapping (a zero-length segment)
     * @throws NativeException when mmap fails
     */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset) throws NativeException {
        // MAP_FAILED is (void *) -1; user-space addresses are positive as a long.
        long address = call(st -> ((MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, length, prot, flags, fd,
                        offset)).address(),
                () -> "mmap(len=" + length + ", prot=" + prot + ", flags=" + flags + ", fd=" + fd + ", offset=" + offset
                        + ")", 0);
        return MemorySegment.ofAddress(address);
    }

    /** Unmaps a mapping made by {@link #mmap}. */
    public static void munmap(long address, long length) throws NativeException {
        call(st -> (int) MUNMAP.invokeExact(st, MemorySegment.ofAddress(address), length),
                () -> "munmap(addr=0x" + Long.toHexString(address) + ", len=" + length + ")", 0);
    }

    /** Creates an anonymous memory file. */
    public static int memfdCreate(String name, int flags) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cName = arena.allocateFrom(name, StandardCharsets.UTF_8);
            return (int) call(st -> (int) MEMFD_CREATE.invokeExact(st, cName, flags),
                    () -> "memfd_create(name=" + name + ", flags=" + flags + ")", 0);
        }
    }

    /** Sets a file's size. */
    public static void ftruncate(int fd, long length) throws NativeException {
        call(st -> (int) FTRUNCATE.invokeExact(st, fd, length), () -> "ftruncate(fd=" + fd + ", len=" + length + ")", 0);
    }

    /** Repositions a file offset; {@code lseek(fd, 0, SEEK_END)} gives the size. */
    public static long lseek(int fd, long offset, int whence) throws NativeException {
        return call(st -> (long) LSEEK.invokeExact(st, fd, offset, whence),
                () -> "lseek(fd=" + fd + ", offset=" + offset + ", whence=" + whence + ")", 0);
    }

    /** Creates an eventfd. */
    public static int eventfd(int initialValue, int flags) throws NativeException {
        return (int) call(st -> (int) EVENTFD.invokeExact(st, initialValue, flags),
                () -> "eventfd(initval=" + initialValue + ", flags=" + flags + ")", 0);
    }

    /**
     * Reads up to {@code length} bytes into {@code buffer}.
     *
     * @return the count read, 0 at end of file, or -1 when the fd is non-blocking and has nothing ({@code EAGAIN})
     */
    public static long read(int fd, MemorySegment buffer, long length) throws NativeException {
        return call(READ_CALL, "read(fd=%d, len=%d)", fd, buffer, length, 0, RETRY_EINTR | EAGAIN_RETURNS_MINUS_ONE);
    }

    /**
     * Writes up to {@code length} bytes from {@code buffer}.
     *
     * @return the count written, or -1 when the fd is non-blocking and full ({@code EAGAIN})
     */
    public static long write(int fd, MemorySegment buffer, long length) throws NativeException {
        return call(WRITE_CALL, "write(fd=%d, len=%d)", fd, buffer, length, 0, RETRY_EINTR | EAGAIN_RETURNS_MINUS_ONE);
    }

    /** Reads at a file position; returns the count read (0 at end of file). */
    public static long pread(int fd, MemorySegment buffer, long length, long position) throws NativeException {
        return call(PREAD_CALL, "pread(fd=%d, len=%d, pos=%d)", fd, buffer, length, position, RETRY_EINTR);
    }

    /** Writes at a file position; returns the count written. */
    public static long pwrite(int fd, MemorySegment buffer, long length, long position) throws NativeException {
        return call(PWRITE_CALL, "pwrite(fd=%d, len=%d, pos=%d)", fd, buffer, length, position, RETRY_EINTR);
    }

    /** Flushes a file's data and metadata. */
    public static void fsync(int fd) throws NativeException {
        call(st -> (int) FSYNC.invokeExact(st, fd), () -> "fsync(fd=" + fd + ")", 0);
    }

    /** Flushes a file's data. */
    public static void fdatasync(int fd) throws NativeException {
        call(st -> (int) FDATASYNC.invokeExact(st, fd), () -> "fdatasync(fd=" + fd + ")", 0);
    }

    /** Manipulates file space ({@code FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE} = 3, {@code FALLOC_FL_ZERO_RANGE} = 16). */
    public static void fallocate(int fd, int mode, long offset, long length) throws NativeException {
        call(st -> (int) FALLOCATE.invokeExact(st, fd, mode, offset, length),
                () -> "fallocate(fd=" + fd + ", mode=" + mode + ", offset=" + offset + ", len=" + length + ")", 0);
    }

    /** Closes an fd. {@code EINTR} is not retried: Linux has released the fd already. */
    public static void close(int fd) throws NativeException {
        call(st -> (int) CLOSE.invokeExact(st, fd), () -> "close(fd=" + fd + ")", EINTR_RETURNS_ZERO);
    }

    /** {@code fcntl} with an integer argument. */
    public static int fcntl(int fd, int cmd, long arg) throws NativeException {
        return (int) call(st -> (int) FCNTL.invokeExact(st, fd, cmd, arg),
                () -> "fcntl(fd=" + fd + ", cmd=" + cmd + ", arg=" + arg + ")", 0);
    }

    /** Creates an epoll instance. */
    public static int epollCreate1(int flags) throws NativeException {
        return (int) call(st -> (int) EPOLL_CREATE1.invokeExact(st, flags), () -> "epoll_create1(flags=" + flags + ")", 0);
    }

    /** Adds, modifies or removes an fd of an epoll instance. */
    public static void epollCtl(int epfd, int op, int fd, int events, long data) throws NativeException {
        MemorySegment event = scratch();
        event.set(JAVA_INT, 0, events);
        event.set(ValueLayout.JAVA_LONG_UNALIGNED, EPOLL_EVENT_DATA_OFFSET, data);
        call(st -> (int) EPOLL_CTL.invokeExact(st, epfd, op, fd, event),
                () -> "epoll_ctl(epfd=" + epfd + ", op=" + op + ", fd=" + fd + ", events=0x" + Integer.toHexString(events)
                        + ")", 0);
    }

    /**
     * Waits for events.
     *
     * @return the number of events stored, 0 on timeout or {@code EINTR}
     */
    public static int epollWait(int epfd, MemorySegment events, int maxEvents, int timeoutMillis) throws NativeException {
        return (int) call(EPOLL_WAIT_CALL, "epoll_wait(epfd=%d, max=%d, timeout=%d)", epfd, events, maxEvents,
                timeoutMillis, EINTR_RETURNS_ZERO);
    }

    /** Creates a pipe; returns {@code {readFd, writeFd}}. */
    public static int[] pipe2(int flags) throws NativeException {
        MemorySegment fds = scratch();
        call(st -> (int) PIPE2.invokeExact(st, fds, flags), () -> "pipe2(flags=" + flags + ")", 0);
        return new int[] {fds.get(JAVA_INT, 0), fds.get(JAVA_INT, 4)};
    }

    /** Creates a connected pair of Unix stream sockets; returns both fds. */
    public static int[] socketpair() throws NativeException {
        MemorySegment fds = scratch();
        call(st -> (int) SOCKETPAIR.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds),
                () -> "socketpair(AF_UNIX, SOCK_STREAM)", 0);
        return new int[] {fds.get(JAVA_INT, 0), fds.get(JAVA_INT, 4)};
    }

    /** {@return the size of the file behind an fd ({@code fstat}); leaves the file offset alone} */
    public static long fileSize(int fd) throws NativeException {
        MemorySegment stat = scratch();
        call(st -> (int) FSTAT.invokeExact(st, fd, stat), () -> "fstat(fd=" + fd + ")", 0);
        return stat.get(JAVA_LONG, STAT_SIZE_OFFSET);
    }

    /**
     * Polls one fd ({@code poll(2)}), waiting at most {@code timeoutMillis} (0: not at all).
     *
     * @param fd the fd
     * @param events the {@code POLL*} bits of interest
     * @param timeoutMillis how long to wait; 0 returns at once
     * @return the returned events ({@code revents}: may include {@link #POLLERR}, {@link #POLLHUP},
     *         {@link #POLLNVAL}), 0 when none is ready
     * @throws NativeException when poll fails
     */
    public static int poll(int fd, short events, int timeoutMillis) throws NativeException {
        MemorySegment pollfd = scratch();
        pollfd.set(JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, events);
        pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        long n = call(POLL_CALL, "poll(fd=%d, events=%d, timeout=%d)", fd, pollfd, events, timeoutMillis, RETRY_EINTR);
        return n == 0 ? 0 : pollfd.get(ValueLayout.JAVA_SHORT, 6) & 0xffff;
    }

    /**
     * Polls one fd without waiting ({@code poll} with timeout 0).
     *
     * @return whether any of {@code events} is ready
     */
    public static boolean ready(int fd, short events) throws NativeException {
        return (poll(fd, events, 0) & events) != 0;
    }

    /** {@return this process's id} */
    public static int getpid() {
        try {
            return (int) call(st -> (int) GETPID.invokeExact(), () -> "getpid()", 0);
        } catch (NativeException e) {
            throw new IllegalStateException(e); // getpid(2) cannot fail
        }
    }
}
