package dev.outproc.examples.migration;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.List;

/**
 * Where the relay reaches a back-end's migration endpoint: {@code unix:PATH} (a local {@code --migration-socket}),
 * {@code stdio} (this process's stdin and stdout, when the relay itself runs at the end of a pipe) or
 * {@code exec:COMMAND} (a command run by {@code /bin/sh -c} whose stdin and stdout carry the bytes, for example
 * {@code exec:ssh host java -jar outproc-examples.jar migration connect /run/dst.sock}).
 */
final class HandshakeEndpointAddress {
    private HandshakeEndpointAddress() {}

    /**
     * Opens a connection.
     *
     * @param spec the endpoint address
     * @return a channel; closing it closes the socket, or the pipes and waits for the command
     * @throws IOException if the endpoint cannot be reached
     */
    static ByteChannel open(String spec) throws IOException {
        if (spec.startsWith("unix:")) {
            SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
            c.connect(UnixDomainSocketAddress.of(Path.of(spec.substring("unix:".length()))));
            return c;
        }
        if (spec.equals("stdio")) {
            return new Pipes(Channels.newChannel(System.in), Channels.newChannel(flushing(System.out, false)), null);
        }
        if (spec.startsWith("exec:")) {
            Process p = new ProcessBuilder(List.of("/bin/sh", "-c", spec.substring("exec:".length())))
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            return new Pipes(Channels.newChannel(p.getInputStream()), Channels.newChannel(flushing(p.getOutputStream(), true)), p);
        }
        throw new IllegalArgumentException("endpoint '" + spec + "' is not unix:PATH, stdio or exec:COMMAND");
    }

    /**
     * Flushes after every write: a message must leave now, or the peer waits for it while we wait for its answer
     * (a process's stdin and System.out are buffered).
     */
    private static OutputStream flushing(OutputStream out, boolean closeable) {
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                out.write(b);
                out.flush();
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                out.write(b, off, len);
                out.flush();
            }

            @Override
            public void close() throws IOException {
                if (closeable) {
                    out.close();
                }
            }
        };
    }

    /** A read and a write channel as one, optionally owning the process behind them. */
    private static final class Pipes implements ByteChannel {
        private final ReadableByteChannel in;
        private final WritableByteChannel out;
        private final Process process;
        private boolean open = true;

        Pipes(ReadableByteChannel in, WritableByteChannel out, Process process) {
            this.in = in;
            this.out = out;
            this.process = process;
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return in.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return out.write(src);
        }

        @Override
        public boolean isOpen() {
            return open;
        }

        @Override
        public void close() throws IOException {
            if (!open) {
                return;
            }
            open = false;
            if (process != null) {
                out.close();
                in.close();
                try {
                    process.waitFor();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    process.destroy();
                }
            }
        }
    }

    /** Copies a stream to a channel until EOF (for {@code connect}). */
    static void pump(InputStream from, WritableByteChannel to) throws IOException {
        byte[] buf = new byte[8192];
        int n;
        while ((n = from.read(buf)) > 0) {
            ByteBuffer b = ByteBuffer.wrap(buf, 0, n);
            while (b.hasRemaining()) {
                to.write(b);
            }
        }
    }
}
