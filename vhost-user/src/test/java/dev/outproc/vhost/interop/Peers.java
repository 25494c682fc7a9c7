package dev.outproc.vhost.interop;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds the real peers that the interop tests ({@code *IT}) talk to: QEMU, qemu-storage-daemon,
 * dpdk-testpmd, a static busybox and an unpacked Debian kernel package. {@code .ci/install-peers.sh}
 * installs all of them on Debian 12.
 *
 * <p>A missing peer is a skipped test by default and a failure when the system property
 * {@code interop.required} is {@code "true"} (the root pom passes it to surefire and failsafe), so
 * that CI cannot silently pass by skipping everything.
 *
 * <p>The kernel is looked up in the directory named by the system property {@code outproc.peers.dir},
 * else the environment variable {@code OUTPROC_PEERS_DIR}, else {@code /var/cache/outproc-peers}: the
 * install script unpacks {@code linux-image-<version>} there and writes the version to
 * {@code kernel-version}.
 */
public final class Peers {

    /** Peer name of {@code qemu-storage-daemon} (vhost-user-blk back-end). */
    public static final String QEMU_STORAGE_DAEMON = "qemu-storage-daemon";
    /** Peer name of {@code qemu-system-x86_64} (vhost-user front-end). */
    public static final String QEMU_SYSTEM = "qemu-system-x86_64";
    /** Peer name of {@code qemu-img}. */
    public static final String QEMU_IMG = "qemu-img";
    /** Peer name of {@code dpdk-testpmd} (vhost-user-net front-end or back-end). */
    public static final String TESTPMD = "dpdk-testpmd";
    /** Peer name of a statically linked busybox (guest userland). */
    public static final String BUSYBOX = "busybox";
    /** Peer name of {@code xz}, which unpacks the kernel ELF out of the Debian {@code vmlinuz}. */
    public static final String XZ = "xz";
    /** Peer name of the unpacked Debian kernel package; {@link #require} returns its root directory. */
    public static final String KERNEL = "kernel";

    private static final String INSTALL_HINT = "install the peers with .ci/install-peers.sh (Debian 12, root)";
    private static final List<Path> SEARCH_PATH = searchPath();

    private Peers() {}

    /** {@return whether a missing peer fails the test instead of skipping it} */
    public static boolean required() {
        return Boolean.getBoolean("interop.required");
    }

    /**
     * Returns the peer, or ends the test: a failure when {@code interop.required=true}, else a skip
     * (JUnit assumption) naming what is missing and where it was looked for.
     *
     * @param what one of the peer names of this class ({@link #QEMU_SYSTEM}, {@link #KERNEL}, ...)
     * @return the executable, or for {@link #KERNEL} the root of the unpacked kernel package
     */
    public static Path require(String what) {
        Optional<Path> found = find(what);
        if (found.isPresent()) {
            return found.get();
        }
        String message = "interop peer '" + what + "' not found (" + whereLooked(what) + "); " + INSTALL_HINT;
        if (required()) {
            fail(message + " [interop.required=true]");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }

    /** {@return the peer if present, see {@link #require(String)} for names} */
    public static Optional<Path> find(String what) {
        return switch (what) {
            case KERNEL -> kernel().map(DebianKernel::root);
            case BUSYBOX -> findBusybox();
            default -> findExecutable(what);
        };
    }

    /** {@return the unpacked kernel, failing or skipping like {@link #require(String)} when absent} */
    public static DebianKernel requireKernel() {
        require(KERNEL);
        return kernel().orElseThrow();
    }

    /** {@return the unpacked Debian kernel package, if the install script has put one in place} */
    public static Optional<DebianKernel> kernel() {
        Path dir = peersDirectory();
        try {
            Path versionFile = dir.resolve("kernel-version");
            if (Files.isRegularFile(versionFile)) {
                String version = Files.readString(versionFile, StandardCharsets.US_ASCII).strip();
                Optional<DebianKernel> k = DebianKernel.at(dir.resolve("linux-image-" + version), version);
                if (k.isPresent()) {
                    return k;
                }
            }
            if (!Files.isDirectory(dir)) {
                return Optional.empty();
            }
            // No version file (unpacked by hand): take the highest-named unpacked package.
            try (Stream<Path> entries = Files.list(dir)) {
                return entries.filter(p -> p.getFileName().toString().startsWith("linux-image-"))
                        .sorted((a, b) -> b.getFileName().compareTo(a.getFileName()))
                        .map(p -> DebianKernel.at(p, p.getFileName().toString().substring("linux-image-".length())))
                        .flatMap(Optional::stream)
                        .findFirst();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the peers directory " + dir, e);
        }
    }

    /** {@return where the unpacked kernel package is expected} */
    public static Path peersDirectory() {
        String dir = System.getProperty("outproc.peers.dir");
        if (dir == null || dir.isBlank()) {
            dir = System.getenv("OUTPROC_PEERS_DIR");
        }
        return Path.of(dir == null || dir.isBlank() ? "/var/cache/outproc-peers" : dir);
    }

    /**
     * Returns a directory for one test's files under the module's {@code target/interop/}, created if
     * needed. Failsafe runs tests with the module directory as working directory.
     *
     * @param name a file-name-safe name, usually the test class
     * @return the directory
     */
    public static Path workDirectory(String name) {
        String basedir = System.getProperty("basedir");
        Path target = (basedir == null ? Path.of("") : Path.of(basedir)).toAbsolutePath().resolve("target");
        Path dir = target.resolve("interop").resolve(name);
        try {
            return Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
    }

    /**
     * Returns a path for a Unix socket named {@code name} in {@code directory}, or in a new directory
     * under the system temp directory when that path would not fit {@code sun_path} (108 bytes,
     * including the terminating NUL), as happens with deep checkouts.
     *
     * @param directory the preferred directory, usually {@link #workDirectory(String)}
     * @param name the socket's file name
     * @return a socket path short enough to bind; any stale file there is removed
     */
    public static Path socketPath(Path directory, String name) {
        Path preferred = directory.toAbsolutePath().resolve(name);
        try {
            Path socket = preferred.toString().getBytes(StandardCharsets.UTF_8).length <= 100
                    ? preferred
                    : Files.createTempDirectory("outproc-sock-").resolve(name);
            Files.deleteIfExists(socket);
            return socket;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare a socket path for " + preferred, e);
        }
    }

    /** The root of an unpacked {@code linux-image-<version>} package. */
    public record DebianKernel(Path root, String version) {

        static Optional<DebianKernel> at(Path root, String version) {
            DebianKernel k = new DebianKernel(root, version);
            return Files.isRegularFile(k.vmlinuz()) && Files.isDirectory(k.modulesDirectory())
                    ? Optional.of(k) : Optional.empty();
        }

        /** {@return the compressed boot image {@code boot/vmlinuz-<version>}} */
        public Path vmlinuz() {
            return root.resolve("boot").resolve("vmlinuz-" + version);
        }

        /** {@return {@code lib/modules/<version>}} */
        public Path modulesDirectory() {
            return root.resolve("lib").resolve("modules").resolve(version);
        }

        /**
         * Finds a module file by module name under {@code lib/modules/<version>/kernel}.
         *
         * @param name module name as given to {@code insmod}, without {@code .ko}
         * @return the {@code .ko} (or compressed {@code .ko.xz}) file
         * @throws IOException when the module is not in this kernel package
         */
        public Path module(String name) throws IOException {
            try (Stream<Path> files = Files.walk(modulesDirectory().resolve("kernel"))) {
                return files.filter(p -> {
                    String f = p.getFileName().toString();
                    return f.equals(name + ".ko") || f.equals(name + ".ko.xz");
                }).findFirst().orElseThrow(() -> new IOException(
                        "kernel module " + name + " not found under " + modulesDirectory()));
            }
        }
    }

    private static Optional<Path> findExecutable(String name) {
        return SEARCH_PATH.stream().map(d -> d.resolve(name)).filter(Files::isExecutable).findFirst();
    }

    // The guest has no dynamic loader: only a static busybox (Debian busybox-static) can be its /bin.
    private static Optional<Path> findBusybox() {
        return SEARCH_PATH.stream().map(d -> d.resolve(BUSYBOX))
                .filter(Files::isExecutable)
                .filter(Peers::isStaticElf)
                .findFirst();
    }

    /** An ELF64 with no {@code PT_INTERP} program header needs no dynamic loader. */
    static boolean isStaticElf(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer header = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
            if (ch.read(header, 0) < 64 || header.getInt(0) != 0x464c457f || header.get(4) != 2) {
                return false; // not ELF, or not 64-bit
            }
            long phoff = header.getLong(32);
            int phentsize = Short.toUnsignedInt(header.getShort(54));
            int phnum = Short.toUnsignedInt(header.getShort(56));
            if (phentsize < 4 || phnum > 256) {
                return false;
            }
            ByteBuffer ph = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < phnum; i++) {
                ph.clear();
                if (ch.read(ph, phoff + (long) i * phentsize) < 4) {
                    return false;
                }
                if (ph.getInt(0) == 3) { // PT_INTERP
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static String whereLooked(String what) {
        return switch (what) {
            case KERNEL -> "no unpacked linux-image-* with boot/vmlinuz-* in " + peersDirectory();
            case BUSYBOX -> "no statically linked busybox in " + SEARCH_PATH;
            default -> "not in " + SEARCH_PATH;
        };
    }

    private static List<Path> searchPath() {
        List<Path> dirs = new ArrayList<>();
        String path = System.getenv("PATH");
        if (path != null) {
            for (String d : path.split(":")) {
                if (!d.isEmpty()) {
                    dirs.add(Path.of(d));
                }
            }
        }
        for (String d : List.of("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin")) {
            if (!dirs.contains(Path.of(d))) {
                dirs.add(Path.of(d));
            }
        }
        return List.copyOf(dirs);
    }
}
