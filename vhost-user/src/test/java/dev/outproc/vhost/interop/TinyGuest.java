package dev.outproc.vhost.interop;

import dev.outproc.vhost.interop.Peers.DebianKernel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;

/**
 * A minimal Linux guest for QEMU: the Debian kernel as an uncompressed ELF {@code vmlinux} (QEMU boots
 * it through its PVH entry, which under TCG halves the boot time compared with the compressed
 * {@code vmlinuz}) and a gzip'd cpio ("newc") initramfs with a static busybox, the virtio modules the
 * caller asks for, and an {@code /init} that mounts proc/sys/devtmpfs, loads them, runs the caller's
 * script and powers off.
 *
 * <p>Both files are cached under the module's {@code target/interop/guest/}: the kernel by its version,
 * the initramfs by a hash of everything it contains, so a rerun costs nothing.
 *
 * <p>The caller's script runs as {@code /guest.sh} in a busybox {@code sh} sourced by {@code /init},
 * with {@code PATH=/bin} and these helpers defined:
 * <ul>
 *   <li>{@code wait_for_block DEV} waits up to 5 s for a block device node to appear;</li>
 *   <li>{@code begin_output} and {@code end_output} print {@link #BEGIN_MARKER} and {@link #END_MARKER},
 *       between which the test reads its results with {@link QemuVm.Result#between()}.</li>
 * </ul>
 * After the script, {@code /init} prints {@code outproc-guest: exit STATUS} and runs {@code poweroff -f}.
 */
public final class TinyGuest {

    /** Module load order for virtio-blk: the Debian kernel has virtio as modules and there is no modprobe. */
    public static final List<String> BLK_MODULES = List.of(
            "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk");
    /** Module load order for virtio-net. */
    public static final List<String> NET_MODULES = List.of(
            "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
            "failover", "net_failover", "virtio_net");
    /** Module load order for virtio-fs. */
    public static final List<String> FS_MODULES = List.of(
            "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
            "fuse", "virtiofs");

    /** Line the guest prints before its results ({@code begin_output}). */
    public static final String BEGIN_MARKER = "==== outproc-guest-output-begin ====";
    /** Line the guest prints after its results ({@code end_output}). */
    public static final String END_MARKER = "==== outproc-guest-output-end ====";

    /** Command line for the guest kernel: console on the first serial port, quiet, no wait on panic. */
    public static final String KERNEL_APPEND = "console=ttyS0 quiet panic=-1";

    private static final byte[] XZ_MAGIC = {(byte) 0xFD, '7', 'z', 'X', 'Z', 0};
    private static final long PROCESS_TIMEOUT_SECONDS = 120;
    private static final int CACHED_INITRAMFS_KEPT = 16;

    private final Path kernel;
    private final Path initramfs;
    private final String kernelVersion;

    private TinyGuest(Path kernel, Path initramfs, String kernelVersion) {
        this.kernel = kernel;
        this.initramfs = initramfs;
        this.kernelVersion = kernelVersion;
    }

    /**
     * Starts describing a guest whose {@code /guest.sh} is {@code script}.
     *
     * @param script busybox {@code sh} script run by {@code /init}
     * @return the builder
     */
    public static Builder builder(String script) {
        return new Builder(script);
    }

    /** {@return the kernel image for {@code -kernel}: the ELF vmlinux (or the vmlinuz if it holds no XZ stream)} */
    public Path kernel() {
        return kernel;
    }

    /** {@return the initramfs for {@code -initrd}} */
    public Path initramfs() {
        return initramfs;
    }

    /** {@return the kernel release, as {@code uname -r} prints it in the guest} */
    public String kernelVersion() {
        return kernelVersion;
    }

    /** Describes and builds a {@link TinyGuest}. */
    public static final class Builder {
        private final String script;
        private List<String> modules = List.of();
        private final Map<String, byte[]> files = new LinkedHashMap<>();

        private Builder(String script) {
            this.script = script;
        }

        /**
         * Modules to {@code insmod}, in order, for example {@link #BLK_MODULES}.
         *
         * @param modules module names without {@code .ko}
         * @return this
         */
        public Builder modules(List<String> modules) {
            this.modules = List.copyOf(modules);
            return this;
        }

        /**
         * Adds a file to the initramfs (mode 0644; parent directories are created).
         *
         * @param guestPath absolute path in the guest, for example {@code /data/pattern}
         * @param content the file's bytes
         * @return this
         */
        public Builder file(String guestPath, byte[] content) {
            if (!guestPath.startsWith("/") || guestPath.contains("..") || guestPath.endsWith("/")) {
                throw new IllegalArgumentException("guest path must be absolute and plain, guestPath=" + guestPath);
            }
            files.put(guestPath.substring(1), content.clone());
            return this;
        }

        /**
         * Builds (or takes from the cache) the kernel and initramfs. Fails or skips (see
         * {@link Peers#require(String)}) when the kernel, busybox or xz are not installed.
         *
         * @return the guest
         * @throws IOException when a file cannot be read or written, or xz fails
         */
        public TinyGuest build() throws IOException {
            DebianKernel k = Peers.requireKernel();
            Path busybox = Peers.require(Peers.BUSYBOX);
            Path cache = Peers.workDirectory("guest");
            Path vmlinux = extractVmlinux(k, cache);

            Map<String, byte[]> moduleFiles = new LinkedHashMap<>();
            for (String m : modules) {
                Path ko = k.module(m);
                byte[] bytes = Files.readAllBytes(ko);
                if (ko.getFileName().toString().endsWith(".xz")) {
                    bytes = unxz(bytes); // busybox insmod cannot read compressed modules
                }
                moduleFiles.put("lib/modules/" + m + ".ko", bytes);
            }
            byte[] init = initScript(modules).getBytes(StandardCharsets.UTF_8);
            byte[] guestScript = script.getBytes(StandardCharsets.UTF_8);
            byte[] busyboxBytes = Files.readAllBytes(busybox);

            MessageDigest sha = sha256();
            update(sha, k.version());
            update(sha, busyboxBytes);
            update(sha, init);
            update(sha, guestScript);
            moduleFiles.forEach((n, b) -> { update(sha, n); update(sha, b); });
            files.forEach((n, b) -> { update(sha, n); update(sha, b); });
            String key = HexFormat.of().formatHex(sha.digest(), 0, 12);
            Path initramfs = cache.resolve("initramfs-" + key + ".cpio.gz");
            if (!Files.isRegularFile(initramfs)) {
                CpioNewcWriter cpio = new CpioNewcWriter();
                for (String dir : List.of("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "mnt", "root")) {
                    cpio.directory(dir);
                }
                // The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
                cpio.characterDevice("dev/console", 0600, 5, 1);
                cpio.file("bin/busybox", 0755, busyboxBytes);
                cpio.file("init", 0755, init);
                cpio.file("guest.sh", 0755, guestScript);
                moduleFiles.forEach((n, b) -> cpio.file(n, 0644, b));
                TreeSet<String> dirs = new TreeSet<>();
                for (String f : files.keySet()) {
                    for (int i = f.indexOf('/'); i > 0; i = f.indexOf('/', i + 1)) {
                        dirs.add(f.substring(0, i));
                    }
                }
                dirs.removeAll(List.of("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "mnt", "root"));
                dirs.forEach(cpio::directory);
                files.forEach((n, b) -> cpio.file(n, 0644, b));
                Path tmp = Files.createTempFile(cache, "initramfs-", ".tmp");
                try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
                    cpio.finishTo(out);
                }
                moveIntoPlace(tmp, initramfs);
                pruneInitramfsCache(cache);
            }
            return new TinyGuest(vmlinux, initramfs, k.version());
        }
    }

    static String initScript(List<String> modules) {
        return """
                #!/bin/busybox sh
                /bin/busybox --install -s /bin
                export PATH=/bin
                mount -t proc proc /proc
                mount -t sysfs sysfs /sys
                mount -t devtmpfs devtmpfs /dev
                for m in %s; do
                  insmod /lib/modules/$m.ko || echo "outproc-guest: insmod $m failed"
                done
                wait_for_block() {
                  n=0
                  while [ ! -b "$1" ]; do
                    n=$((n + 1))
                    if [ $n -gt 50 ]; then echo "outproc-guest: no block device $1"; return 1; fi
                    sleep 0.1
                  done
                }
                begin_output() { echo "%s"; }
                end_output() { echo "%s"; }
                ( . /guest.sh )
                echo "outproc-guest: exit $?"
                poweroff -f
                """.formatted(String.join(" ", modules), BEGIN_MARKER, END_MARKER);
    }

    /**
     * The Debian {@code vmlinuz} is a bzImage whose payload is one XZ stream; the ELF inside boots
     * faster under TCG. Extracted once per kernel version into {@code cache}.
     */
    private static Path extractVmlinux(DebianKernel k, Path cache) throws IOException {
        Path vmlinux = cache.resolve("vmlinux-" + k.version());
        if (Files.isRegularFile(vmlinux)) {
            return vmlinux;
        }
        byte[] vmlinuz = Files.readAllBytes(k.vmlinuz());
        int at = indexOf(vmlinuz, XZ_MAGIC);
        if (at < 0) {
            return k.vmlinuz(); // another compression: QEMU boots the bzImage as it is
        }
        Peers.require(Peers.XZ);
        Path stream = Files.createTempFile(cache, "vmlinuz-xz-", ".tmp");
        Path out = Files.createTempFile(cache, "vmlinux-", ".tmp");
        try {
            Files.write(stream, java.util.Arrays.copyOfRange(vmlinuz, at, vmlinuz.length));
            // --single-stream: the bzImage continues after the XZ stream; that tail is not garbage to xz.
            Process p = new ProcessBuilder(Peers.require(Peers.XZ).toString(), "-dc", "--single-stream")
                    .redirectInput(stream.toFile())
                    .redirectOutput(out.toFile())
                    .redirectError(ProcessBuilder.Redirect.PIPE)
                    .start();
            String err = waitFor(p, "xz -dc of " + k.vmlinuz());
            byte[] head = new byte[4];
            try (var in = Files.newInputStream(out)) {
                if (in.readNBytes(head, 0, 4) != 4 || head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') {
                    throw new IOException("the XZ stream at offset " + at + " of " + k.vmlinuz()
                            + " is not an ELF kernel: " + err);
                }
            }
            moveIntoPlace(out, vmlinux);
            return vmlinux;
        } finally {
            Files.deleteIfExists(stream);
            Files.deleteIfExists(out);
        }
    }

    private static byte[] unxz(byte[] compressed) throws IOException {
        Path in = Files.createTempFile("outproc-ko-", ".xz");
        try {
            Files.write(in, compressed);
            Process p = new ProcessBuilder(Peers.require(Peers.XZ).toString(), "-dc")
                    .redirectInput(in.toFile()).start();
            byte[] out = p.getInputStream().readAllBytes();
            waitFor(p, "xz -dc of a kernel module");
            return out;
        } finally {
            Files.deleteIfExists(in);
        }
    }

    private static String waitFor(Process p, String what) throws IOException {
        try {
            if (!p.waitFor(PROCESS_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(what + " did not finish within " + PROCESS_TIMEOUT_SECONDS + " s");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted: " + what);
        }
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IOException(what + " failed, exit=" + p.exitValue() + ": " + err);
        }
        return err;
    }

    /**
     * Guests with per-run content (random patterns) get a new initramfs each run: keep the newest
     * {@value #CACHED_INITRAMFS_KEPT}, and anything younger than ten minutes that another run may be booting.
     */
    private static void pruneInitramfsCache(Path cache) throws IOException {
        long now = System.currentTimeMillis();
        List<Path> all;
        try (var files = Files.list(cache)) {
            all = files.filter(p -> p.getFileName().toString().startsWith("initramfs-")
                            && p.getFileName().toString().endsWith(".cpio.gz"))
                    .sorted(java.util.Comparator.comparingLong(TinyGuest::modifiedMillis).reversed())
                    .toList();
        }
        for (Path p : all.subList(Math.min(CACHED_INITRAMFS_KEPT, all.size()), all.size())) {
            if (now - modifiedMillis(p) > 10 * 60_000L) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static long modifiedMillis(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return Long.MAX_VALUE; // vanished or unreadable: not ours to delete
        }
    }

    // Several builds may share target/: write aside, then rename, so nobody sees half a file.
    private static void moveIntoPlace(Path tmp, Path target) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i <= haystack.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is mandatory in every JDK", e);
        }
    }

    private static void update(MessageDigest sha, String s) {
        update(sha, s.getBytes(StandardCharsets.UTF_8));
    }

    private static void update(MessageDigest sha, byte[] b) {
        // Length first, so that concatenations of different parts cannot collide.
        sha.update(java.nio.ByteBuffer.allocate(8).putLong(b.length).array());
        sha.update(b);
    }

    /**
     * Writes a cpio archive in the "newc" format the kernel unpacks into its initramfs
     * (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII header
     * of the magic {@code 070701} and 13 eight-digit hex fields, the NUL-terminated name padded to 4
     * bytes, the data padded to 4 bytes; the archive ends with the entry {@code TRAILER!!!}.
     */
    static final class CpioNewcWriter {
        private static final int S_IFDIR = 0040000;
        private static final int S_IFREG = 0100000;
        private static final int S_IFCHR = 0020000;

        private final ByteArrayOutputStream out = new ByteArrayOutputStream(4 << 20);
        private final List<String> names = new ArrayList<>();
        private int nextInode = 1;

        void directory(String name) {
            entry(name, S_IFDIR | 0755, 2, 0, 0, new byte[0]);
        }

        void file(String name, int permissions, byte[] data) {
            entry(name, S_IFREG | permissions, 1, 0, 0, data);
        }

        void characterDevice(String name, int permissions, int major, int minor) {
            entry(name, S_IFCHR | permissions, 1, major, minor, new byte[0]);
        }

        void finishTo(OutputStream sink) throws IOException {
            entry("TRAILER!!!", 0, 1, 0, 0, new byte[0]);
            out.writeTo(sink);
        }

        private void entry(String name, int mode, int nlink, int rdevMajor, int rdevMinor, byte[] data) {
            if (names.contains(name)) {
                throw new IllegalArgumentException("duplicate initramfs entry, name=" + name);
            }
            names.add(name);
            byte[] nameBytes = (name + "\0").getBytes(StandardCharsets.UTF_8);
            int ino = name.equals("TRAILER!!!") ? 0 : nextInode++;
            StringBuilder h = new StringBuilder(110).append("070701");
            for (long field : new long[] {
                    ino, mode, 0 /* uid */, 0 /* gid */, nlink, 0 /* mtime: reproducible */, data.length,
                    0, 0 /* devmajor, devminor */, rdevMajor, rdevMinor, nameBytes.length, 0 /* check */}) {
                h.append(String.format("%08x", field));
            }
            byte[] header = h.toString().getBytes(StandardCharsets.US_ASCII);
            out.writeBytes(header);
            out.writeBytes(nameBytes);
            pad(header.length + nameBytes.length);
            out.writeBytes(data);
            pad(data.length);
        }

        private void pad(int length) {
            for (int i = length; i % 4 != 0; i++) {
                out.write(0);
            }
        }
    }
}
