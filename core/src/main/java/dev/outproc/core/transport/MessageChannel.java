package dev.outproc.core.transport;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;
import dev.outproc.core.internal.linux.Sockets;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A connected Unix stream socket that carries byte messages with file descriptors attached
 * ({@code SCM_RIGHTS}). Message framing belongs to the protocol: this channel reads exactly the
 * number of bytes asked for, and collects the fds that arrive with the first bytes of that read.
 *
 * <p>Rules it enforces: fds travel with at least one payload byte; received fds are close-on-exec
 * and owned from the moment they arrive; an fd that arrives when none was expected is closed at once
 * and counted ({@link #unexpectedFdCount()}); fds beyond the caller's limit are closed at once and
 * reported in {@link ReceivedFds#dropped()}; a message whose fds did not fit the control buffer
 * ({@code MSG_CTRUNC}) fails with a {@link TransportException} after every fd that did arrive is closed.
 *
 * <p>One thread reads at a time; writes are serialized, so several threads may write whole messages.
 * {@link #close()} from any thread wakes a blocked reader (with {@link PeerClosedException}).
 * Reading into and writing from native segments copies nothing extra; the channel keeps one native
 * buffer for heap segments, so steady-state messaging allocates nothing.
 */
public final class MessageChannel implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MessageChannel.class.getName());
    /** The kernel's limit on fds in one message ({@code SCM_MAX_FD}). */
    public static final int MAX_FDS_PER_MESSAGE = 253;
    private static final long CONTROL_BYTES = Sockets.CMSG_DATA_OFFSET + 4L * MAX_FDS_PER_MESSAGE + 4;

    private final OwnedFd fd;
    private final Arena arena = Arena.ofShared();
    private final Object readLock = new Object();
    private final Object writeLock = new Object();
    private final MemorySegment readHeader;
    private final MemorySegment readIov;
    private final MemorySegment readControl;
    private final MemorySegment writeHeader;
    private final MemorySegment writeIov;
    private final MemorySegment writeControl;
    private MemorySegment readBuffer;
    private MemorySegment writeBuffer;
    private volatile boolean closed;
    private long unexpectedFds;

    private MessageChannel(OwnedFd fd) {
        this.fd = fd;
        this.readHeader = arena.allocate(Sockets.MSGHDR_SIZE, 8);
        this.readIov = arena.allocate(16, 8);
        this.readControl = arena.allocate(CONTROL_BYTES, 8);
        this.writeHeader = arena.allocate(Sockets.MSGHDR_SIZE, 8);
        this.writeIov = arena.allocate(16, 8);
        this.writeControl = arena.allocate(CONTROL_BYTES, 8);
        this.readBuffer = arena.allocate(4096, 8);
        this.writeBuffer = arena.allocate(4096, 8);
    }

    /**
     * Wraps a connected socket; ownership of the fd moves to the channel.
     *
     * @param fd the connected Unix stream socket
     * @return the channel
     * @throws IOException reserved for validation of the fd
     */
    public static MessageChannel adopt(OwnedFd fd) throws IOException {
        return new MessageChannel(fd.transfer());
    }

    /**
     * Connects to a listening socket.
     *
     * @param path the socket's path
     * @return the channel
     * @throws IOException when the connection fails
     */
    public static MessageChannel connect(Path path) throws IOException {
        OwnedFd fd = OwnedFd.of(Sockets.socket());
        try {
            Sockets.connect(fd.get(), path.toString());
        } catch (NativeException e) {
            fd.close();
            throw e;
        }
        return new MessageChannel(fd);
    }

    /**
     * Creates a connected socket pair: one end as a channel, the other as an fd to hand to a peer
     * (for {@code SET_BACKEND_REQ_FD}) or to {@link #adopt}.
     *
     * @return the pair
     * @throws IOException when socketpair fails
     */
    public static Pair pair() throws IOException {
        int[] fds = Linux.socketpair();
        return new Pair(new MessageChannel(OwnedFd.of(fds[0])), OwnedFd.of(fds[1]));
    }

    /**
     * A channel and the fd of the other end.
     *
     * @param channel this end
     * @param peerFd the other end, to send or adopt
     */
    public record Pair(MessageChannel channel, OwnedFd peerFd) {
    }

    /** {@return the socket's fd (still owned by the channel)} */
    public int fd() {
        return fd.get();
    }

    /**
     * Sets how long a read may wait for bytes; 0 waits forever.
     *
     * @param timeoutMillis the timeout
     * @throws IOException when the socket refuses
     */
    public void setReadTimeoutMillis(int timeoutMillis) throws IOException {
        Sockets.setReceiveTimeout(fd.get(), timeoutMillis);
    }

    /**
     * Sets how long a write may wait for the peer to make room; 0 waits forever. A write that times out
     * throws {@link WriteTimeoutException}; the message may then be partly sent, so the connection is out of
     * step and should be closed.
     *
     * @param timeoutMillis the timeout
     * @throws IOException when the socket refuses
     */
    public void setWriteTimeoutMillis(int timeoutMillis) throws IOException {
        Sockets.setSendTimeout(fd.get(), timeoutMillis);
    }

    /**
     * Reads exactly {@code destination.byteSize()} bytes. Any fd that arrives is closed and counted.
     *
     * @param destination where the bytes go
     * @throws PeerClosedException when the peer closes first
     * @throws IOException on other failures
     */
    public void readFully(MemorySegment destination) throws IOException {
        readFully(destination, 0).close();
    }

    /**
     * Reads exactly {@code destination.byteSize()} bytes and returns the fds that came with the first
     * bytes, at most {@code maxFds} (the rest are closed and counted as dropped). Fds that arrive with
     * later bytes of the same read belong to no message the caller expects: they are closed and counted
     * as unexpected.
     *
     * @param destination where the bytes go
     * @param maxFds how many fds the caller accepts
     * @return the fds, owned by the caller
     * @throws PeerClosedException when the peer closes first
     * @throws TransportException on a timeout or when a message carried more fds than any message may
     * @throws IOException on other failures
     */
    public ReceivedFds readFully(MemorySegment destination, int maxFds) throws IOException {
        long n = destination.byteSize();
        synchronized (readLock) {
            ensureOpen();
            MemorySegment target = destination.isNative() && !destination.isReadOnly() ? destination : readBuffer(n);
            List<OwnedFd> kept = null;
            int dropped = 0;
            long done = 0;
            try {
                while (done < n) {
                    readIov.set(ADDRESS, 0, target.asSlice(done));
                    readIov.set(JAVA_LONG, 8, n - done);
                    readHeader.fill((byte) 0);
                    readHeader.set(ADDRESS, 16, readIov);
                    readHeader.set(JAVA_LONG, 24, 1);
                    readHeader.set(ADDRESS, 32, readControl);
                    readHeader.set(JAVA_LONG, 40, CONTROL_BYTES);
                    long got = Sockets.recvmsg(fd.get(), readHeader);
                    if (got < 0) {
                        // A timeout leaves the msghdr as it was: its control length still covers the previous
                        // message's fds, which must not be taken (and closed) a second time.
                        throw new TransportException("read timed out after " + done + " of " + n + " bytes");
                    }
                    int flags = readHeader.get(JAVA_INT, 48);
                    long controlLength = readHeader.get(JAVA_LONG, 40);
                    if (controlLength > 0) {
                        List<OwnedFd> arrived = collectFds(controlLength);
                        if ((flags & Sockets.MSG_CTRUNC) != 0) {
                            OwnedFd.closeAll(arrived);
                            throw new TransportException("a message carried more fds than the " + MAX_FDS_PER_MESSAGE
                                    + " one message may; the connection is out of step");
                        }
                        for (OwnedFd f : arrived) {
                            if (done == 0 && (kept == null ? 0 : kept.size()) < maxFds) {
                                if (kept == null) {
                                    kept = new ArrayList<>(4);
                                }
                                kept.add(f);
                            } else {
                                f.close();
                                if (done == 0) {
                                    dropped++;
                                } else {
                                    unexpectedFds++;
                                    LOG.log(System.Logger.Level.WARNING, "closed an fd that arrived in the middle of a message");
                                }
                            }
                        }
                    }
                    if (got == 0) {
                        throw new PeerClosedException(done, n);
                    }
                    done += got;
                }
            } catch (IOException | RuntimeException e) {
                if (kept != null) {
                    OwnedFd.closeAll(kept);
                }
                if (closed) {
                    throw new PeerClosedException(done, n);
                }
                throw e;
            }
            if (maxFds == 0 && dropped > 0) {
                unexpectedFds += dropped;
                LOG.log(System.Logger.Level.WARNING, "closed {0} fd(s) that arrived with a message that takes none", dropped);
            }
            if (target != destination) {
                MemorySegment.copy(target, 0, destination, 0, n);
            }
            return kept == null && dropped == 0 ? ReceivedFds.none() : new ReceivedFds(kept == null ? List.of() : kept, dropped);
        }
    }

    private List<OwnedFd> collectFds(long controlLength) {
        List<OwnedFd> fds = new ArrayList<>();
        long offset = 0;
        while (offset + Sockets.CMSG_DATA_OFFSET <= controlLength) {
            long length = readControl.get(JAVA_LONG, offset);
            int level = readControl.get(JAVA_INT, offset + 8);
            int type = readControl.get(JAVA_INT, offset + 12);
            if (length < Sockets.CMSG_DATA_OFFSET || offset + length > controlLength) {
                break;
            }
            if (level == Sockets.SOL_SOCKET && type == Sockets.SCM_RIGHTS) {
                long count = (length - Sockets.CMSG_DATA_OFFSET) / 4;
                for (long i = 0; i < count; i++) {
                    fds.add(OwnedFd.of(readControl.get(JAVA_INT, offset + Sockets.CMSG_DATA_OFFSET + 4 * i)));
                }
            }
            offset += (length + 7) & ~7L;
        }
        return fds;
    }

    private MemorySegment readBuffer(long n) {
        if (readBuffer.byteSize() < n) {
            readBuffer = arena.allocate(Math.max(n, readBuffer.byteSize() * 2), 8);
        }
        return readBuffer;
    }

    /**
     * Writes a whole message with fds attached to its first byte.
     *
     * @param source the bytes ({@code > 0} when fds are attached)
     * @param fds fds to send (they stay owned by the caller; the kernel duplicates them into the peer)
     * @throws IOException when the write fails ({@link PeerClosedException} when the peer is gone,
     *         {@link WriteTimeoutException} when the write timeout passed)
     */
    public void write(MemorySegment source, List<OwnedFd> fds) throws IOException {
        long n = source.byteSize();
        if (!fds.isEmpty() && n == 0) {
            throw new IllegalArgumentException("fds must travel with at least one byte");
        }
        if (fds.size() > MAX_FDS_PER_MESSAGE) {
            throw new IllegalArgumentException("at most " + MAX_FDS_PER_MESSAGE + " fds per message, fds=" + fds.size());
        }
        synchronized (writeLock) {
            ensureOpen();
            MemorySegment data = source;
            if (!source.isNative()) {
                if (writeBuffer.byteSize() < n) {
                    writeBuffer = arena.allocate(Math.max(n, writeBuffer.byteSize() * 2), 8);
                }
                MemorySegment.copy(source, 0, writeBuffer, 0, n);
                data = writeBuffer;
            }
            long done = 0;
            boolean first = true;
            try {
                while (done < n) {
                    writeIov.set(ADDRESS, 0, data.asSlice(done));
                    writeIov.set(JAVA_LONG, 8, n - done);
                    writeHeader.fill((byte) 0);
                    writeHeader.set(ADDRESS, 16, writeIov);
                    writeHeader.set(JAVA_LONG, 24, 1);
                    if (first && !fds.isEmpty()) {
                        long length = Sockets.CMSG_DATA_OFFSET + 4L * fds.size();
                        writeControl.set(JAVA_LONG, 0, length);
                        writeControl.set(JAVA_INT, 8, Sockets.SOL_SOCKET);
                        writeControl.set(JAVA_INT, 12, Sockets.SCM_RIGHTS);
                        for (int i = 0; i < fds.size(); i++) {
                            writeControl.set(JAVA_INT, Sockets.CMSG_DATA_OFFSET + 4L * i, fds.get(i).get());
                        }
                        writeHeader.set(ADDRESS, 32, writeControl);
                        writeHeader.set(JAVA_LONG, 40, (length + 7) & ~7L);
                    }
                    long sent = Sockets.sendmsg(fd.get(), writeHeader);
                    if (sent < 0) {
                        throw new WriteTimeoutException(done, n);
                    }
                    done += sent;
                    first = false;
                }
            } catch (NativeException e) {
                if (e.errno() == Errno.EPIPE || e.errno() == Errno.ECONNRESET || closed) {
                    throw new PeerClosedException(0, n);
                }
                throw e;
            }
        }
    }

    /**
     * Writes a whole message without fds.
     *
     * @param source the bytes
     * @throws IOException when the write fails
     */
    public void write(MemorySegment source) throws IOException {
        write(source, List.of());
    }

    /**
     * {@return the credentials of the peer process}
     *
     * @throws IOException when the kernel cannot tell
     */
    public PeerCredentials peerCredentials() throws IOException {
        int[] c = Sockets.peerCredentials(fd.get());
        return new PeerCredentials(c[0], Integer.toUnsignedLong(c[1]), Integer.toUnsignedLong(c[2]));
    }

    /** {@return how many fds arrived where none were expected (each was closed)} */
    public long unexpectedFdCount() {
        synchronized (readLock) {
            return unexpectedFds;
        }
    }

    /** {@return whether the channel is open} */
    public boolean isOpen() {
        return !closed;
    }

    private void ensureOpen() throws PeerClosedException {
        if (closed) {
            throw new PeerClosedException(0, 0);
        }
    }

    /** Shuts down both directions, waking a blocked reader; the fd stays open until {@link #close()}. */
    public void shutdown() {
        if (fd.isOpen()) {
            Sockets.shutdown(fd.get());
        }
    }

    /** Closes the socket; a reader or writer blocked in another thread returns first. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        shutdown();
        synchronized (readLock) {
            synchronized (writeLock) {
                fd.close();
                arena.close();
            }
        }
    }

    @Override
    public String toString() {
        return "MessageChannel[" + fd + "]";
    }

}
