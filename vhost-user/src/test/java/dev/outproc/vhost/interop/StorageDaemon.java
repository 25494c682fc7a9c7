package dev.outproc.vhost.interop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A running {@code qemu-storage-daemon} that exports a raw image as a vhost-user-blk back-end on a
 * Unix socket: the real back-end our front-end is tested against. It accepts one front-end at a
 * time and the next one after the previous disconnects.
 *
 * <p>The command line is the one in the project's peer notes:
 * <pre>
 * qemu-storage-daemon \
 *   --blockdev driver=file,node-name=file0,filename=IMAGE \
 *   --blockdev driver=raw,node-name=disk0,file=file0 \
 *   --export type=vhost-user-blk,id=exp0,addr.type=unix,addr.path=SOCKET,node-name=disk0,writable=on,num-queues=N
 * </pre>
 *
 * {@snippet :
 * try (StorageDaemon qsd = StorageDaemon.builder(Peers.workDirectory("MyIT")).sizeBytes(64 << 20).start()) {
 *     // connect a front-end to qsd.socket(); afterwards compare with the bytes of qsd.image()
 * }
 * }
 */
public final class StorageDaemon implements AutoCloseable {

    /** Longest wait for the daemon to listen after start. */
    public static final Duration START_TIMEOUT = Duration.ofSeconds(15);

    private final PeerProcess process;
    private final Path socket;
    private final Path image;
    private final long sizeBytes;
    private final Path socketTempDir;

    private StorageDaemon(PeerProcess process, Path socket, Path image, long sizeBytes, Path socketTempDir) {
        this.process = process;
        this.socket = socket;
        this.image = image;
        this.sizeBytes = sizeBytes;
        this.socketTempDir = socketTempDir;
    }

    /**
     * Starts configuring a daemon whose image, socket and log live in {@code directory}.
     *
     * @param directory a per-test directory, for example {@link Peers#workDirectory(String)}
     * @return the builder
     */
    public static Builder builder(Path directory) {
        return new Builder(directory);
    }

    /** {@return the vhost-user socket the daemon listens on} */
    public Path socket() {
        return socket;
    }

    /** {@return the raw image file that backs the exported disk} */
    public Path image() {
        return image;
    }

    /** {@return the disk size in bytes} */
    public long sizeBytes() {
        return sizeBytes;
    }

    /** {@return the daemon's stdout+stderr log} */
    public Path log() {
        return process.log();
    }

    /** {@return the command line the daemon runs with} */
    public String commandLine() {
        return process.commandLine();
    }

    /** {@return whether the daemon is still running} */
    public boolean isAlive() {
        return process.process().isAlive();
    }

    /** {@return command, state and log tail, for failure messages} */
    public String describe() {
        return process.describe();
    }

    /** Stops the daemon (SIGTERM, then SIGKILL after a bounded wait) and removes its socket. */
    @Override
    public void close() throws IOException {
        process.close();
        Files.deleteIfExists(socket);
        if (socketTempDir != null) {
            Files.deleteIfExists(socketTempDir);
        }
    }

    /** Configures and starts a {@link StorageDaemon}. */
    public static final class Builder {
        private final Path directory;
        private long sizeBytes = 64L << 20;
        private Path image;
        private boolean writable = true;
        private int numQueues = 1;
        private String name = "qsd";

        private Builder(Path directory) {
            this.directory = directory.toAbsolutePath();
        }

        /**
         * Size of a new, zero-filled image (ignored with {@link #image(Path)}).
         *
         * @param sizeBytes image size, a multiple of 512
         * @return this
         */
        public Builder sizeBytes(long sizeBytes) {
            if (sizeBytes <= 0 || sizeBytes % 512 != 0) {
                throw new IllegalArgumentException("image size must be a positive multiple of 512, sizeBytes=" + sizeBytes);
            }
            this.sizeBytes = sizeBytes;
            return this;
        }

        /**
         * Exports an existing raw image instead of creating one.
         *
         * @param image the image file
         * @return this
         */
        public Builder image(Path image) {
            this.image = image.toAbsolutePath();
            return this;
        }

        /**
         * @param writable whether the export accepts writes ({@code writable=on})
         * @return this
         */
        public Builder writable(boolean writable) {
            this.writable = writable;
            return this;
        }

        /**
         * @param numQueues the number of virtqueues the export offers
         * @return this
         */
        public Builder numQueues(int numQueues) {
            if (numQueues < 1) {
                throw new IllegalArgumentException("numQueues must be >= 1, numQueues=" + numQueues);
            }
            this.numQueues = numQueues;
            return this;
        }

        /**
         * @param name base name of the image, socket and log files (several daemons in one directory)
         * @return this
         */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /**
         * Creates the image if needed, starts the daemon and waits until its socket accepts.
         * Fails or skips (see {@link Peers#require(String)}) when the daemon is not installed.
         *
         * @return the running daemon
         * @throws IOException when it does not start or listen within {@link #START_TIMEOUT}
         */
        public StorageDaemon start() throws IOException {
            Path qsd = Peers.require(Peers.QEMU_STORAGE_DAEMON);
            Files.createDirectories(directory);
            Path disk = image;
            long size;
            if (disk == null) {
                disk = directory.resolve(name + ".img");
                createRawImage(disk, sizeBytes);
                size = sizeBytes;
            } else {
                size = Files.size(disk);
            }
            // sun_path holds 108 bytes: a deep target/ path would be cut, so fall back to /tmp.
            Path socketTempDir = null;
            Path socket = directory.resolve(name + ".sock");
            if (socket.toString().getBytes().length > 100) {
                socketTempDir = Files.createTempDirectory("outproc-qsd-");
                socket = socketTempDir.resolve("vub.sock");
            }
            Files.deleteIfExists(socket);
            List<String> cmd = new ArrayList<>(List.of(qsd.toString(),
                    "--blockdev", "driver=file,node-name=file0,filename=" + escape(disk),
                    "--blockdev", "driver=raw,node-name=disk0,file=file0",
                    "--export", "type=vhost-user-blk,id=exp0,addr.type=unix,addr.path=" + escape(socket)
                            + ",node-name=disk0,writable=" + (writable ? "on" : "off")
                            + ",num-queues=" + numQueues));
            PeerProcess p = PeerProcess.start("qemu-storage-daemon", cmd, directory.resolve(name + ".log"));
            StorageDaemon daemon = new StorageDaemon(p, socket, disk, size, socketTempDir);
            try {
                p.awaitSocketAccepts(socket, START_TIMEOUT);
            } catch (IOException | RuntimeException e) {
                daemon.close();
                throw e;
            }
            return daemon;
        }
    }

    /** QEMU's option syntax doubles a comma inside a value. */
    private static String escape(Path path) {
        return path.toString().replace(",", ",,");
    }

    /**
     * Creates a zero-filled raw image with {@code qemu-img create -f raw} (sparse).
     *
     * @param image the file to create (replaced if present)
     * @param sizeBytes its size
     * @throws IOException when qemu-img fails
     */
    public static void createRawImage(Path image, long sizeBytes) throws IOException {
        Path qemuImg = Peers.require(Peers.QEMU_IMG);
        Files.deleteIfExists(image);
        Process p = new ProcessBuilder(qemuImg.toString(), "create", "-q", "-f", "raw", image.toString(),
                Long.toString(sizeBytes)).redirectErrorStream(true).start();
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("qemu-img create did not finish within 30 s for " + image);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while creating " + image);
        }
        String out = new String(p.getInputStream().readAllBytes());
        if (p.exitValue() != 0 || Files.size(image) != sizeBytes) {
            throw new IOException("qemu-img create failed, exit=" + p.exitValue() + ", image=" + image
                    + ", sizeBytes=" + sizeBytes + ": " + out);
        }
    }
}
