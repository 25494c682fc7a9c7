package dev.outproc.core.transport;

import dev.outproc.core.fd.NativeException;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.internal.linux.Linux;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.newsclub.net.unix.AFUNIXSocketCredentials;
import org.newsclub.net.unix.FileDescriptorCast;

import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A connected Unix stream socket that carries byte messages with file descriptors attached
 * ({@code SCM_RIGHTS}). Message framing belongs to the protocol: this channel reads exactly the
 * number of bytes asked for, and collects the fds that arrive with the first bytes of that read.
 *
 * <p>Rules it enforces: fds travel with at least one payload byte; an fd that arrives when none was
 * expected is closed at once and counted ({@link #unexpectedFdCount()}); fds beyond the caller's
 * limit are closed at once and reported in {@link ReceivedFds#dropped()}. Reads happen on one thread
 * at a time; writes are serialized, so several threads may write whole messages.
 *
 * <p>This package is the only one of outproc that uses junixsocket.
 */
public final class MessageChannel implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MessageChannel.class.getName());
    /** The kernel's limit on fds in one message ({@code SCM_MAX_FD}). */
    public static final int MAX_FDS_PER_MESSAGE = 253;
    private static final int ANCILLARY_BUFFER_BYTES = 64 + 4 * MAX_FDS_PER_MESSAGE + 64;

    private final AFUNIXSocket socket;
    private final InputStream in;
    private final OutputStream out;
    private final Object writeLock = new Object();
    private byte[] readBuffer = new byte[4096];
    private byte[] writeBuffer = new byte[4096];
    private long unexpectedFds;

    private MessageChannel(AFUNIXSocket socket) throws IOException {
        this.socket = socket;
        socket.setAncillaryReceiveBufferSize(ANCILLARY_BUFFER_BYTES);
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    static MessageChannel wrap(AFUNIXSocket socket) throws IOException {
        try {
            return new MessageChannel(socket);
        } catch (IOException e) {
            socket.close();
            throw e;
        }
    }

    /**
     * Connects to a listening socket.
     *
     * @param path the socket's path
     * @return the channel
     * @throws IOException when the connection fails
     */
    public static MessageChannel connect(Path path) throws IOException {
        return wrap(AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path)));
    }

    /**
     * Uses an already connected socket passed in as an fd (the {@code --fd} convention, or one end of a
     * socketpair). Ownership of the fd moves to the channel.
     *
     * @param fd the connected socket
     * @return the channel
     * @throws IOException when the fd is not a Unix socket
     */
    public static MessageChannel adopt(OwnedFd fd) throws IOException {
        int raw = fd.get();
        AFUNIXSocket socket;
        try {
            socket = FileDescriptorCast.unsafeUsing(raw).as(AFUNIXSocket.class);
        } catch (IOException | ClassCastException e) {
            fd.close();
            throw new TransportException("fd " + raw + " is not a connected Unix socket", e);
        }
        fd.release(); // the socket owns it now
        return wrap(socket);
    }

    /**
     * Creates a connected socket pair: one end as a channel, the other as an fd to hand to a peer
     * (for {@code SET_BACKEND_REQ_FD}).
     *
     * @return the pair
     * @throws IOException when socketpair fails
     */
    public static Pair pair() throws IOException {
        int[] fds = Linux.socketpair();
        OwnedFd local = OwnedFd.of(fds[0]);
        OwnedFd remote = OwnedFd.of(fds[1]);
        try {
            return new Pair(adopt(local), remote);
        } catch (IOException e) {
            remote.close();
            throw e;
        }
    }

    /**
     * A channel and the fd of the other end.
     *
     * @param channel this end
     * @param peerFd the other end, to send or adopt
     */
    public record Pair(MessageChannel channel, OwnedFd peerFd) {
    }

    /**
     * Sets how long a read may wait; 0 waits forever.
     *
     * @param timeoutMillis the timeout
     * @throws SocketException when the socket is closed
     */
    public void setReadTimeoutMillis(int timeoutMillis) throws SocketException {
        socket.setSoTimeout(timeoutMillis);
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
     * later bytes of the same read belong to no message this caller expects: they are closed and counted
     * as unexpected.
     *
     * @param destination where the bytes go
     * @param maxFds how many fds the caller accepts
     * @return the fds, owned by the caller
     * @throws PeerClosedException when the peer closes first
     * @throws IOException on other failures
     */
    public ReceivedFds readFully(MemorySegment destination, int maxFds) throws IOException {
        long length = destination.byteSize();
        if (length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("read too large, length=" + length);
        }
        int n = (int) length;
        if (readBuffer.length < n) {
            readBuffer = new byte[Math.max(n, readBuffer.length * 2)];
        }
        List<OwnedFd> kept = new ArrayList<>(0);
        int dropped = 0;
        int done = 0;
        try {
            while (done < n) {
                int got;
                try {
                    got = in.read(readBuffer, done, n - done);
                } catch (SocketTimeoutException e) {
                    throw new TransportException("read timed out after " + done + " of " + n + " bytes", e);
                } catch (SocketException e) {
                    if (isClosedSocket(e)) {
                        throw new PeerClosedException(done, n);
                    }
                    throw e;
                }
                FileDescriptor[] fds = socket.getReceivedFileDescriptors();
                if (fds != null) {
                    for (FileDescriptor fd : fds) {
                        OwnedFd owned = own(fd);
                        if (owned == null) {
                            continue;
                        }
                        if (done == 0 && kept.size() < maxFds) {
                            kept.add(owned);
                        } else {
                            owned.close();
                            if (done == 0) {
                                dropped++;
                            } else {
                                unexpectedFds++;
                                LOG.log(System.Logger.Level.WARNING, "closed an fd that arrived in the middle of a message");
                            }
                        }
                    }
                }
                if (got < 0) {
                    throw new PeerClosedException(done, n);
                }
                done += got;
            }
        } catch (IOException | RuntimeException e) {
            OwnedFd.closeAll(kept);
            throw e;
        }
        if (maxFds == 0 && dropped > 0) {
            unexpectedFds += dropped;
            LOG.log(System.Logger.Level.WARNING, "closed {0} fd(s) that arrived with a message that takes none", dropped);
        }
        MemorySegment.copy(readBuffer, 0, destination, ValueLayout.JAVA_BYTE, 0, n);
        return new ReceivedFds(kept, dropped);
    }

    private static boolean isClosedSocket(SocketException e) {
        String m = String.valueOf(e.getMessage()).toLowerCase(java.util.Locale.ROOT);
        return m.contains("reset") || m.contains("closed") || m.contains("broken pipe");
    }

    private static OwnedFd own(FileDescriptor fd) {
        try {
            Integer raw = FileDescriptorCast.using(fd).as(Integer.class);
            return raw != null && raw >= 0 ? OwnedFd.of(raw) : null;
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot read a received fd", e);
            return null;
        }
    }

    /**
     * Writes a whole message with fds attached to its first byte.
     *
     * @param source the bytes ({@code > 0} when fds are attached)
     * @param fds fds to send (they stay owned by the caller; the kernel duplicates them into the peer)
     * @throws IOException when the write fails
     */
    public void write(MemorySegment source, List<OwnedFd> fds) throws IOException {
        int n = Math.toIntExact(source.byteSize());
        if (!fds.isEmpty() && n == 0) {
            throw new IllegalArgumentException("fds must travel with at least one byte");
        }
        if (fds.size() > MAX_FDS_PER_MESSAGE) {
            throw new IllegalArgumentException("at most " + MAX_FDS_PER_MESSAGE + " fds per message, fds=" + fds.size());
        }
        synchronized (writeLock) {
            if (writeBuffer.length < n) {
                writeBuffer = new byte[Math.max(n, writeBuffer.length * 2)];
            }
            MemorySegment.copy(source, ValueLayout.JAVA_BYTE, 0, writeBuffer, 0, n);
            if (!fds.isEmpty()) {
                FileDescriptor[] outbound = new FileDescriptor[fds.size()];
                for (int i = 0; i < outbound.length; i++) {
                    outbound[i] = FileDescriptorCast.unsafeUsing(fds.get(i).get()).getFileDescriptor();
                }
                socket.setOutboundFileDescriptors(outbound);
            }
            try {
                out.write(writeBuffer, 0, n);
                out.flush();
            } catch (SocketException e) {
                if (isClosedSocket(e)) {
                    throw new PeerClosedException(0, n);
                }
                throw e;
            } finally {
                if (!fds.isEmpty()) {
                    socket.setOutboundFileDescriptors((FileDescriptor[]) null);
                }
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
        AFUNIXSocketCredentials c = socket.getPeerCredentials();
        long[] gids = c.getGids();
        return new PeerCredentials(c.getPid(), c.getUid(), gids != null && gids.length > 0 ? gids[0] : -1);
    }

    /** {@return how many fds arrived where none were expected (each was closed)} */
    public long unexpectedFdCount() {
        return unexpectedFds;
    }

    /** {@return whether the channel is open} */
    public boolean isOpen() {
        return !socket.isClosed();
    }

    /** Shuts down both directions, waking a reader blocked on this channel; the socket stays to be closed. */
    public void shutdown() {
        try {
            socket.shutdownInput();
        } catch (IOException ignored) {
            // already shut or closed
        }
        try {
            socket.shutdownOutput();
        } catch (IOException ignored) {
            // already shut or closed
        }
    }

    /** Closes the socket. */
    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "close failed", e);
        }
    }

    /**
     * Duplicates this channel's socket fd (for handing the connection to another process).
     *
     * @return the duplicate
     * @throws IOException when the fd cannot be read or duplicated
     */
    public OwnedFd duplicateFd() throws IOException {
        Integer raw = FileDescriptorCast.using(socket.getFileDescriptor()).as(Integer.class);
        try {
            return OwnedFd.duplicate(raw);
        } catch (NativeException e) {
            throw e;
        }
    }
}
