package dev.outproc.core.internal.linux;

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
 * call captures {@code errno} through {@link Linker.Option#captureCallState(String...)}. A failed
 * call throws {@link NativeException} naming the call, the errno and the arguments.
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
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(64, 8));

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
    /** Offset of {@code st_size} in {@code struct stat} (48 on x86-64 and on the generic 64-bit layout). */
    private static final long STAT_SIZE_OFFSET = 48;
    private static final long STAT_BYTES = 256;

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

    private Linux() {
    }

    private static MemorySegment symbol(String name) {
        SymbolLookup lookup = LINKER.defaultLookup();
        return lookup.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
    }

    static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(symbol(name), descriptor, CAPTURE);
    }

    static MemorySegment state() {
        return CAPTURE_STATE.get();
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    /** {@return a per-thread 64-byte, 8-aligned scratch segment for small call arguments} */
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
        MemorySegment st = state();
        MemorySegment address;
        try {
            address = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (address.address() == -1L) {
            throw new NativeException("mmap(len=" + length + ", prot=" + prot + ", flags=" + flags + ", fd=" + fd
                    + ", offset=" + offset + ")", errno(st));
        }
        return address;
    }

    /** Unmaps a mapping made by {@link #mmap}. */
    public static void munmap(long address, long length) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) MUNMAP.invokeExact(st, MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("munmap(addr=0x" + Long.toHexString(address) + ", len=" + length + ")", errno(st));
        }
    }

    /** Creates an anonymous memory file. */
    public static int memfdCreate(String name, int flags) throws NativeException {
        MemorySegment st = state();
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cName = arena.allocateFrom(name, StandardCharsets.UTF_8);
            fd = (int) MEMFD_CREATE.invokeExact(st, cName, flags);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (fd < 0) {
            throw new NativeException("memfd_create(name=" + name + ", flags=" + flags + ")", errno(st));
        }
        return fd;
    }

    /** Sets a file's size. */
    public static void ftruncate(int fd, long length) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) FTRUNCATE.invokeExact(st, fd, length);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("ftruncate(fd=" + fd + ", len=" + length + ")", errno(st));
        }
    }

    /** Repositions a file offset; {@code lseek(fd, 0, SEEK_END)} gives the size. */
    public static long lseek(int fd, long offset, int whence) throws NativeException {
        MemorySegment st = state();
        long rc;
        try {
            rc = (long) LSEEK.invokeExact(st, fd, offset, whence);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc < 0) {
            throw new NativeException("lseek(fd=" + fd + ", offset=" + offset + ", whence=" + whence + ")", errno(st));
        }
        return rc;
    }

    /** Creates an eventfd. */
    public static int eventfd(int initialValue, int flags) throws NativeException {
        MemorySegment st = state();
        int fd;
        try {
            fd = (int) EVENTFD.invokeExact(st, initialValue, flags);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (fd < 0) {
            throw new NativeException("eventfd(initval=" + initialValue + ", flags=" + flags + ")", errno(st));
        }
        return fd;
    }

    /**
     * Reads up to {@code length} bytes into {@code buffer}.
     *
     * @return the count read, 0 at end of file, or -1 when the fd is non-blocking and has nothing ({@code EAGAIN})
     */
    public static long read(int fd, MemorySegment buffer, long length) throws NativeException {
        MemorySegment st = state();
        while (true) {
            long n;
            try {
                n = (long) READ.invokeExact(st, fd, buffer, length);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (n >= 0) {
                return n;
            }
            int e = errno(st);
            if (e == 4) {
                continue; // EINTR: retry
            }
            if (e == 11) {
                return -1; // EAGAIN
            }
            throw new NativeException("read(fd=" + fd + ", len=" + length + ")", e);
        }
    }

    /**
     * Writes up to {@code length} bytes from {@code buffer}.
     *
     * @return the count written, or -1 when the fd is non-blocking and full ({@code EAGAIN})
     */
    public static long write(int fd, MemorySegment buffer, long length) throws NativeException {
        MemorySegment st = state();
        while (true) {
            long n;
            try {
                n = (long) WRITE.invokeExact(st, fd, buffer, length);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (n >= 0) {
                return n;
            }
            int e = errno(st);
            if (e == 4) {
                continue;
            }
            if (e == 11) {
                return -1;
            }
            throw new NativeException("write(fd=" + fd + ", len=" + length + ")", e);
        }
    }

    /** Reads at a file position; returns the count read (0 at end of file). */
    public static long pread(int fd, MemorySegment buffer, long length, long position) throws NativeException {
        MemorySegment st = state();
        while (true) {
            long n;
            try {
                n = (long) PREAD.invokeExact(st, fd, buffer, length, position);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (n >= 0) {
                return n;
            }
            int e = errno(st);
            if (e != 4) {
                throw new NativeException("pread(fd=" + fd + ", len=" + length + ", pos=" + position + ")", e);
            }
        }
    }

    /** Writes at a file position; returns the count written. */
    public static long pwrite(int fd, MemorySegment buffer, long length, long position) throws NativeException {
        MemorySegment st = state();
        while (true) {
            long n;
            try {
                n = (long) PWRITE.invokeExact(st, fd, buffer, length, position);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (n >= 0) {
                return n;
            }
            int e = errno(st);
            if (e != 4) {
                throw new NativeException("pwrite(fd=" + fd + ", len=" + length + ", pos=" + position + ")", e);
            }
        }
    }

    /** Flushes a file's data and metadata. */
    public static void fsync(int fd) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) FSYNC.invokeExact(st, fd);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("fsync(fd=" + fd + ")", errno(st));
        }
    }

    /** Flushes a file's data. */
    public static void fdatasync(int fd) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) FDATASYNC.invokeExact(st, fd);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("fdatasync(fd=" + fd + ")", errno(st));
        }
    }

    /** Manipulates file space ({@code FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE} = 3, {@code FALLOC_FL_ZERO_RANGE} = 16). */
    public static void fallocate(int fd, int mode, long offset, long length) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) FALLOCATE.invokeExact(st, fd, mode, offset, length);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("fallocate(fd=" + fd + ", mode=" + mode + ", offset=" + offset
                    + ", len=" + length + ")", errno(st));
        }
    }

    /** Closes an fd. {@code EINTR} is not retried: Linux has released the fd already. */
    public static void close(int fd) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) CLOSE.invokeExact(st, fd);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0 && errno(st) != 4) {
            throw new NativeException("close(fd=" + fd + ")", errno(st));
        }
    }

    /** {@code fcntl} with an integer argument. */
    public static int fcntl(int fd, int cmd, long arg) throws NativeException {
        MemorySegment st = state();
        int rc;
        try {
            rc = (int) FCNTL.invokeExact(st, fd, cmd, arg);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc < 0) {
            throw new NativeException("fcntl(fd=" + fd + ", cmd=" + cmd + ", arg=" + arg + ")", errno(st));
        }
        return rc;
    }

    /** Creates an epoll instance. */
    public static int epollCreate1(int flags) throws NativeException {
        MemorySegment st = state();
        int fd;
        try {
            fd = (int) EPOLL_CREATE1.invokeExact(st, flags);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (fd < 0) {
            throw new NativeException("epoll_create1(flags=" + flags + ")", errno(st));
        }
        return fd;
    }

    /** Adds, modifies or removes an fd of an epoll instance. */
    public static void epollCtl(int epfd, int op, int fd, int events, long data) throws NativeException {
        MemorySegment st = state();
        MemorySegment event = scratch();
        event.set(JAVA_INT, 0, events);
        event.set(ValueLayout.JAVA_LONG_UNALIGNED, EPOLL_EVENT_DATA_OFFSET, data);
        int rc;
        try {
            rc = (int) EPOLL_CTL.invokeExact(st, epfd, op, fd, event);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("epoll_ctl(epfd=" + epfd + ", op=" + op + ", fd=" + fd + ", events=0x"
                    + Integer.toHexString(events) + ")", errno(st));
        }
    }

    /**
     * Waits for events.
     *
     * @return the number of events stored, 0 on timeout or {@code EINTR}
     */
    public static int epollWait(int epfd, MemorySegment events, int maxEvents, int timeoutMillis) throws NativeException {
        MemorySegment st = state();
        int n;
        try {
            n = (int) EPOLL_WAIT.invokeExact(st, epfd, events, maxEvents, timeoutMillis);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (n < 0) {
            int e = errno(st);
            if (e == 4) {
                return 0;
            }
            throw new NativeException("epoll_wait(epfd=" + epfd + ", max=" + maxEvents + ", timeout=" + timeoutMillis + ")", e);
        }
        return n;
    }

    /** Creates a pipe; returns {@code {readFd, writeFd}}. */
    public static int[] pipe2(int flags) throws NativeException {
        MemorySegment st = state();
        MemorySegment fds = scratch();
        int rc;
        try {
            rc = (int) PIPE2.invokeExact(st, fds, flags);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("pipe2(flags=" + flags + ")", errno(st));
        }
        return new int[] {fds.get(JAVA_INT, 0), fds.get(JAVA_INT, 4)};
    }

    /** Creates a connected pair of Unix stream sockets; returns both fds. */
    public static int[] socketpair() throws NativeException {
        MemorySegment st = state();
        MemorySegment fds = scratch();
        int rc;
        try {
            rc = (int) SOCKETPAIR.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("socketpair(AF_UNIX, SOCK_STREAM)", errno(st));
        }
        return new int[] {fds.get(JAVA_INT, 0), fds.get(JAVA_INT, 4)};
    }

    /** {@return the size of the file behind an fd ({@code fstat}); leaves the file offset alone} */
    public static long fileSize(int fd) throws NativeException {
        MemorySegment st = state();
        int rc;
        long size;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stat = arena.allocate(STAT_BYTES, 8);
            rc = (int) FSTAT.invokeExact(st, fd, stat);
            size = stat.get(JAVA_LONG, STAT_SIZE_OFFSET);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("fstat(fd=" + fd + ")", errno(st));
        }
        return size;
    }

    /**
     * Polls one fd without waiting ({@code poll} with timeout 0).
     *
     * @return whether any of {@code events} is ready
     */
    public static boolean ready(int fd, short events) throws NativeException {
        MemorySegment st = state();
        MemorySegment pollfd = scratch();
        pollfd.set(JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, events);
        pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        while (true) {
            int n;
            try {
                n = (int) POLL.invokeExact(st, pollfd, 1L, 0);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (n >= 0) {
                return n > 0 && (pollfd.get(ValueLayout.JAVA_SHORT, 6) & events) != 0;
            }
            int e = errno(st);
            if (e != 4) {
                throw new NativeException("poll(fd=" + fd + ", events=" + events + ")", e);
            }
        }
    }

    /** {@return this process's id} */
    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }


}
