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
    /** {@code SO_ACCEPTCONN}. */
    public static final int SO_ACCEPTCONN = 30;
    /** {@code SO_RCVTIMEO} (struct timeval of two longs on 64-bit ABIs). */
    public static final int SO_RCVTIMEO = 20;
    /** {@code SO_SNDTIMEO} (struct timeval, as {@link #SO_RCVTIMEO}). */
    public static final int SO_SNDTIMEO = 21;
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

    private static final Linux.FdDowncall SENDMSG_CALL = (st, fd, msghdr, flags, unused) ->
            (long) SENDMSG.invokeExact(st, fd, msghdr, (int) flags);
    private static final Linux.FdDowncall RECVMSG_CALL = (st, fd, msghdr, flags, unused) ->
            (long) RECVMSG.invokeExact(st, fd, msghdr, (int) flags);

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
        return (int) Linux.call(st -> (int) SOCKET.invokeExact(st, Linux.AF_UNIX, Linux.SOCK_STREAM | Linux.SOCK_CLOEXEC, 0),
                () -> "socket(AF_UNIX, SOCK_STREAM)", 0);
    }

    /** Binds a socket to a path. */
    public static void bind(int fd, String path) throws NativeException {
        callWithAddress(BIND, "bind", fd, path);
    }

    /** Listens. */
    public static void listen(int fd, int backlog) throws NativeException {
        Linux.call(st -> (int) LISTEN.invokeExact(st, fd, backlog), () -> "listen(fd=" + fd + ", backlog=" + backlog + ")", 0);
    }

    /** Accepts a connection (close-on-exec), retrying on EINTR. */
    public static int accept(int fd) throws NativeException {
        return (int) Linux.call(
                st -> (int) ACCEPT4.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, Linux.SOCK_CLOEXEC),
                () -> "accept4(fd=" + fd + ")", Linux.RETRY_EINTR);
    }

    /** Connects to a path. */
    public static void connect(int fd, String path) throws NativeException {
        callWithAddress(CONNECT, "connect", fd, path);
    }

    /** {@code bind} and {@code connect}: an fd and a {@code struct sockaddr_un} built from {@code path}. */
    private static void callWithAddress(MethodHandle handle, String name, int fd, String path) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment address = address(arena, path);
            Linux.call(st -> (int) handle.invokeExact(st, fd, address, SOCKADDR_UN_SIZE),
                    () -> name + "(fd=" + fd + ", path=" + path + ")", 0);
        }
    }

    /**
     * Sends a prepared {@code struct msghdr}, retrying on EINTR.
     *
     * @return bytes sent, -1 when the send timeout passed with nothing sent ({@code EAGAIN})
     */
    public static long sendmsg(int fd, MemorySegment msghdr) throws NativeException {
        return Linux.call(SENDMSG_CALL, "sendmsg(fd=%d)", fd, msghdr, MSG_NOSIGNAL, 0, Linux.RETRY_EINTR | Linux.EAGAIN_RETURNS_MINUS_ONE);
    }

    /**
     * Receives into a prepared {@code struct msghdr} (received fds are close-on-exec), retrying on EINTR.
     *
     * @return bytes received, 0 at end of stream, -1 on timeout ({@code EAGAIN})
     */
    public static long recvmsg(int fd, MemorySegment msghdr) throws NativeException {
        return Linux.call(RECVMSG_CALL, "recvmsg(fd=%d)", fd, msghdr, MSG_CMSG_CLOEXEC, 0,
                Linux.RETRY_EINTR | Linux.EAGAIN_RETURNS_MINUS_ONE);
    }

    /** {@return {@code {pid, uid, gid}} of the peer ({@code SO_PEERCRED}: the credentials it had at connect)} */
    public static int[] peerCredentials(int fd) throws NativeException {
        MemorySegment cred = Linux.scratch();
        MemorySegment length = cred.asSlice(16, 4);
        length.set(JAVA_INT, 0, 12);
        getsockopt(fd, SO_PEERCRED, "SO_PEERCRED", cred, length);
        return new int[] {cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8)};
    }

    /** {@return whether a socket is listening ({@code SO_ACCEPTCONN})} */
    public static boolean isListening(int fd) throws NativeException {
        MemorySegment value = Linux.scratch();
        MemorySegment length = value.asSlice(8, 4);
        length.set(JAVA_INT, 0, 4);
        getsockopt(fd, SO_ACCEPTCONN, "SO_ACCEPTCONN", value, length);
        return value.get(JAVA_INT, 0) != 0;
    }

    private static void getsockopt(int fd, int option, String name, MemorySegment value, MemorySegment length)
            throws NativeException {
        Linux.call(st -> (int) GETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, option, value, length),
                () -> "getsockopt(fd=" + fd + ", " + name + ")", 0);
    }

    /** Sets the receive timeout; 0 waits forever. */
    public static void setReceiveTimeout(int fd, int timeoutMillis) throws NativeException {
        MemorySegment timeval = Linux.scratch();
        timeval.set(JAVA_LONG, 0, timeoutMillis / 1000);
        timeval.set(JAVA_LONG, 8, (timeoutMillis % 1000) * 1000L);
        Linux.call(st -> (int) SETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, SO_RCVTIMEO, timeval, 16),
                () -> "setsockopt(fd=" + fd + ", SO_RCVTIMEO, " + timeoutMillis + " ms)", 0);
    }

    /** Sets the send timeout; 0 waits forever. */
    public static void setSendTimeout(int fd, int timeoutMillis) throws NativeException {
        MemorySegment timeval = Linux.scratch();
        timeval.set(JAVA_LONG, 0, timeoutMillis / 1000);
        timeval.set(JAVA_LONG, 8, (timeoutMillis % 1000) * 1000L);
        Linux.call(st -> (int) SETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, SO_SNDTIMEO, timeval, 16),
                () -> "setsockopt(fd=" + fd + ", SO_SNDTIMEO, " + timeoutMillis + " ms)", 0);
    }

    /** Shuts down both directions; errors (already shut, not connected) are ignored. */
    public static void shutdown(int fd) {
        try {
            Linux.call(st -> (int) SHUTDOWN.invokeExact(st, fd, SHUT_RDWR), () -> "shutdown(fd=" + fd + ")", 0);
        } catch (NativeException ignored) {
            // ENOTCONN or EBADF: nothing left to shut down
        }
    }
}
