package dev.outproc.core.internal.linux;

import dev.outproc.core.fd.NativeException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Unix stream sockets through FFM: socket, bind, listen, accept4, connect, sendmsg and recvmsg with
 * {@code SCM_RIGHTS}, {@code SO_PEERCRED}, {@code SO_RCVTIMEO} and shutdown. Layouts are those of the
 * 64-bit Linux ABIs (x86-64, arm64).
 */
@SuppressWarnings("restricted")
public final class Sockets {
    /** {@code SOL_SOCKET}. */
    public static final int SOL_SOCKET = 1;
    /** {@code SCM_RIGHTS}. */
    public static final int SCM_RIGHTS = 1;
    /** {@code SO_PEERCRED}. */
    public static final int SO_PEERCRED = 17;
    /** {@code SO_RCVTIMEO} (struct timeval of two longs on 64-bit ABIs). */
    public static final int SO_RCVTIMEO = 20;
    /** recvmsg flag: set close-on-exec on received fds. */
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    /** sendmsg flag: no SIGPIPE on a closed peer. */
    public static final int MSG_NOSIGNAL = 0x4000;
    /** msg_flags: control data was truncated. */
    public static final int MSG_CTRUNC = 0x8;
    /** shutdown both directions. */
    public static final int SHUT_RDWR = 2;
    /** Size of {@code struct sockaddr_un}. */
    public static final int SOCKADDR_UN_SIZE = 110;
    /** Longest path {@code sun_path} holds, without its NUL. */
    public static final int MAX_PATH_BYTES = 107;
    /** Size of {@code struct msghdr}. */
    public static final long MSGHDR_SIZE = 56;
    /** Offset of {@code cmsg_data} in a control message (after len, level, type). */
    public static final long CMSG_DATA_OFFSET = 16;

    private static final MethodHandle SOCKET = Linux.handle("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = Linux.handle("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = Linux.handle("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = Linux.handle("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle CONNECT = Linux.handle("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = Linux.handle("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG = Linux.handle("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle GETSOCKOPT = Linux.handle("getsockopt", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SETSOCKOPT = Linux.handle("setsockopt", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SHUTDOWN = Linux.handle("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));

    private Sockets() {
    }

    /**
     * {@return a {@code struct sockaddr_un} for a path, allocated in {@code arena}}
     *
     * @param arena where to allocate
     * @param path the socket path
     */
    public static MemorySegment address(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > MAX_PATH_BYTES) {
            throw new IllegalArgumentException("socket path longer than " + MAX_PATH_BYTES + " bytes: " + path);
        }
        MemorySegment address = arena.allocate(SOCKADDR_UN_SIZE, 8);
        address.set(java.lang.foreign.ValueLayout.JAVA_SHORT, 0, (short) Linux.AF_UNIX);
        MemorySegment.copy(bytes, 0, address, java.lang.foreign.ValueLayout.JAVA_BYTE, 2, bytes.length);
        return address;
    }

    /** Creates a close-on-exec Unix stream socket. */
    public static int socket() throws NativeException {
        MemorySegment st = Linux.state();
        int fd;
        try {
            fd = (int) SOCKET.invokeExact(st, Linux.AF_UNIX, Linux.SOCK_STREAM | Linux.SOCK_CLOEXEC, 0);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (fd < 0) {
            throw new NativeException("socket(AF_UNIX, SOCK_STREAM)", Linux.errno(st));
        }
        return fd;
    }

    /** Binds a socket to a path. */
    public static void bind(int fd, String path) throws NativeException {
        MemorySegment st = Linux.state();
        int rc;
        try (Arena arena = Arena.ofConfined()) {
            rc = (int) BIND.invokeExact(st, fd, address(arena, path), SOCKADDR_UN_SIZE);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("bind(fd=" + fd + ", path=" + path + ")", Linux.errno(st));
        }
    }

    /** Listens. */
    public static void listen(int fd, int backlog) throws NativeException {
        MemorySegment st = Linux.state();
        int rc;
        try {
            rc = (int) LISTEN.invokeExact(st, fd, backlog);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("listen(fd=" + fd + ", backlog=" + backlog + ")", Linux.errno(st));
        }
    }

    /** Accepts a connection (close-on-exec), retrying on EINTR. */
    public static int accept(int fd) throws NativeException {
        MemorySegment st = Linux.state();
        while (true) {
            int client;
            try {
                client = (int) ACCEPT4.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, Linux.SOCK_CLOEXEC);
            } catch (Throwable t) {
                throw Linux.unexpected(t);
            }
            if (client >= 0) {
                return client;
            }
            int e = Linux.errno(st);
            if (e != 4) {
                throw new NativeException("accept4(fd=" + fd + ")", e);
            }
        }
    }

    /** Connects to a path. */
    public static void connect(int fd, String path) throws NativeException {
        MemorySegment st = Linux.state();
        int rc;
        try (Arena arena = Arena.ofConfined()) {
            rc = (int) CONNECT.invokeExact(st, fd, address(arena, path), SOCKADDR_UN_SIZE);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("connect(fd=" + fd + ", path=" + path + ")", Linux.errno(st));
        }
    }

    /**
     * Sends a prepared {@code struct msghdr}, retrying on EINTR.
     *
     * @return bytes sent
     */
    public static long sendmsg(int fd, MemorySegment msghdr) throws NativeException {
        MemorySegment st = Linux.state();
        while (true) {
            long n;
            try {
                n = (long) SENDMSG.invokeExact(st, fd, msghdr, MSG_NOSIGNAL);
            } catch (Throwable t) {
                throw Linux.unexpected(t);
            }
            if (n >= 0) {
                return n;
            }
            int e = Linux.errno(st);
            if (e != 4) {
                throw new NativeException("sendmsg(fd=" + fd + ")", e);
            }
        }
    }

    /**
     * Receives into a prepared {@code struct msghdr} (received fds are close-on-exec), retrying on EINTR.
     *
     * @return bytes received, 0 at end of stream, -1 on timeout ({@code EAGAIN})
     */
    public static long recvmsg(int fd, MemorySegment msghdr) throws NativeException {
        MemorySegment st = Linux.state();
        while (true) {
            long n;
            try {
                n = (long) RECVMSG.invokeExact(st, fd, msghdr, MSG_CMSG_CLOEXEC);
            } catch (Throwable t) {
                throw Linux.unexpected(t);
            }
            if (n >= 0) {
                return n;
            }
            int e = Linux.errno(st);
            if (e == 11) {
                return -1;
            }
            if (e != 4) {
                throw new NativeException("recvmsg(fd=" + fd + ")", e);
            }
        }
    }

    /** {@return {@code {pid, uid, gid}} of the peer ({@code SO_PEERCRED})} */
    public static int[] peerCredentials(int fd) throws NativeException {
        MemorySegment st = Linux.state();
        int rc;
        int[] result = new int[3];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cred = arena.allocate(12, 4);
            MemorySegment length = arena.allocate(JAVA_INT);
            length.set(JAVA_INT, 0, 12);
            rc = (int) GETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, SO_PEERCRED, cred, length);
            result[0] = cred.get(JAVA_INT, 0);
            result[1] = cred.get(JAVA_INT, 4);
            result[2] = cred.get(JAVA_INT, 8);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("getsockopt(fd=" + fd + ", SO_PEERCRED)", Linux.errno(st));
        }
        return result;
    }

    /** {@return whether a socket is listening ({@code SO_ACCEPTCONN})} */
    public static boolean isListening(int fd) throws NativeException {
        MemorySegment st = Linux.state();
        int rc;
        int value;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(JAVA_INT);
            MemorySegment length = arena.allocate(JAVA_INT);
            length.set(JAVA_INT, 0, 4);
            rc = (int) GETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, 30 /* SO_ACCEPTCONN */, v, length);
            value = v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("getsockopt(fd=" + fd + ", SO_ACCEPTCONN)", Linux.errno(st));
        }
        return value != 0;
    }

    /** Sets the receive timeout; 0 waits forever. */
    public static void setReceiveTimeout(int fd, int timeoutMillis) throws NativeException {
        MemorySegment st = Linux.state();
        int rc;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment timeval = arena.allocate(16, 8);
            timeval.set(JAVA_LONG, 0, timeoutMillis / 1000);
            timeval.set(JAVA_LONG, 8, (timeoutMillis % 1000) * 1000L);
            rc = (int) SETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, SO_RCVTIMEO, timeval, 16);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (rc != 0) {
            throw new NativeException("setsockopt(fd=" + fd + ", SO_RCVTIMEO, " + timeoutMillis + " ms)", Linux.errno(st));
        }
    }

    /** Shuts down both directions; errors (already shut, not connected) are ignored. */
    public static void shutdown(int fd) {
        try {
            int ignored = (int) SHUTDOWN.invokeExact(Linux.state(), fd, SHUT_RDWR);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
    }
}
