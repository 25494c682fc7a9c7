package dev.outproc.vhost.interop;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * QEMU ({@code qemu-system-x86_64 -accel tcg}) booting a {@link TinyGuest}: the real vhost-user
 * front-end our back-ends are tested against. Guest RAM is a shared memfd, as every vhost-user
 * back-end needs; the serial console goes to a log file that {@link Result} returns.
 *
 * <p>The command line (extra arguments in the middle):
 * <pre>
 * qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot
 *   -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem
 *   [-chardev socket,id=vu0,path=SOCKET -device vhost-user-blk-pci,chardev=vu0 ...]
 *   -kernel vmlinux -initrd initramfs.cpio.gz -append "console=ttyS0 quiet panic=-1"
 * </pre>
 * KVM is not used: on these machines {@code /dev/kvm} exists but refuses ordinary guest kernels.
 *
 * {@snippet :
 * TinyGuest guest = TinyGuest.builder("begin_output; uname -r; end_output").build();
 * QemuVm.Result r = QemuVm.builder(guest, Peers.workDirectory("MyIT")).run();
 * String output = r.between();
 * }
 */
public final class QemuVm implements AutoCloseable {

    /** Default bound on one guest run; a TCG boot to {@code poweroff -f} takes about 2 s. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

    private final PeerProcess process;
    private final Path stderrLog;
    private final long startNanos;
    private final Duration timeout;

    private QemuVm(PeerProcess process, Path stderrLog, Duration timeout) {
        this.process = process;
        this.stderrLog = stderrLog;
        this.timeout = timeout;
        this.startNanos = System.nanoTime();
    }

    /**
     * Starts configuring a VM that boots {@code guest}, writing its logs into {@code directory}.
     *
     * @param guest the kernel and initramfs
     * @param directory where {@code NAME-console.log} and {@code NAME-stderr.log} go
     * @return the builder
     */
    public static Builder builder(TinyGuest guest, Path directory) {
        return new Builder(guest, directory);
    }

    /** {@return the command line QEMU runs with} */
    public String commandLine() {
        return process.commandLine();
    }

    /** {@return whether QEMU is still running} */
    public boolean isAlive() {
        return process.process().isAlive();
    }

    /**
     * Waits for the guest to power off, killing QEMU when the builder's timeout (counted from start)
     * runs out.
     *
     * @return exit code, console output and timing
     */
    public Result awaitExit() {
        Duration left = timeout.minusNanos(System.nanoTime() - startNanos);
        boolean exited = process.awaitExit(left.isNegative() ? Duration.ZERO : left);
        if (!exited) {
            process.kill();
        }
        Duration elapsed = Duration.ofNanos(System.nanoTime() - startNanos);
        String stderr;
        try {
            stderr = Files.readString(stderrLog, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            stderr = "(cannot read " + stderrLog + ": " + e + ")";
        }
        return new Result(exited ? process.process().exitValue() : -1, !exited,
                process.logText().replace("\r", ""), stderr, elapsed, process.commandLine());
    }

    /** Kills QEMU if it still runs (SIGTERM, then SIGKILL after a bounded wait). */
    @Override
    public void close() {
        process.close();
    }

    /**
     * What one guest run produced.
     *
     * @param exitCode QEMU's exit code (-1 after a timeout)
     * @param timedOut whether QEMU was killed at the timeout
     * @param console everything the guest wrote on its serial console
     * @param stderr QEMU's own messages
     * @param elapsed from QEMU's start to its exit
     * @param commandLine the QEMU command line, for failure messages
     */
    public record Result(int exitCode, boolean timedOut, String console, String stderr, Duration elapsed,
            String commandLine) {

        /** {@return the guest's output between {@link TinyGuest#BEGIN_MARKER} and {@link TinyGuest#END_MARKER}} */
        public String between() {
            return between(TinyGuest.BEGIN_MARKER, TinyGuest.END_MARKER);
        }

        /**
         * Returns the console text strictly between the first line holding {@code begin} and the next
         * line holding {@code end}, without those lines.
         *
         * @param begin the start marker
         * @param end the end marker
         * @return the lines between, joined with {@code \n}
         * @throws AssertionError naming the run when a marker is missing
         */
        public String between(String begin, String end) {
            int b = console.indexOf(begin);
            if (b < 0) {
                throw new AssertionError("marker '" + begin + "' not on the guest console; " + this);
            }
            int from = console.indexOf('\n', b);
            int e = from < 0 ? -1 : console.indexOf(end, from);
            if (e < 0) {
                throw new AssertionError("marker '" + end + "' not after '" + begin + "' on the guest console; " + this);
            }
            int to = console.lastIndexOf('\n', e);
            return to <= from ? "" : console.substring(from + 1, to);
        }

        /** {@return whether QEMU exited by itself with code 0 (the guest powered off)} */
        public boolean poweredOff() {
            return !timedOut && exitCode == 0;
        }

        @Override
        public String toString() {
            return "QEMU " + (timedOut ? "timed out" : "exit " + exitCode) + " after " + elapsed.toMillis()
                    + " ms\n  command: " + commandLine + "\n  stderr:\n" + stderr + "\n  console:\n" + console;
        }
    }

    /** Configures and starts a {@link QemuVm}. */
    public static final class Builder {
        private final TinyGuest guest;
        private final Path directory;
        private final List<String> extraArgs = new ArrayList<>();
        private int memoryMiB = 256;
        private Duration timeout = DEFAULT_TIMEOUT;
        private String name = "qemu";
        private int nextChardev;
        private Path executable;
        private String machine;

        private Builder(TinyGuest guest, Path directory) {
            this.guest = guest;
            this.directory = directory.toAbsolutePath();
        }

        /**
         * @param memoryMiB guest RAM, all of it in the shared memfd
         * @return this
         */
        public Builder memoryMiB(int memoryMiB) {
            if (memoryMiB < 64) {
                throw new IllegalArgumentException("the Debian kernel needs at least 64 MiB, memoryMiB=" + memoryMiB);
            }
            this.memoryMiB = memoryMiB;
            return this;
        }

        /**
         * @param timeout bound on the whole run, after which QEMU is killed
         * @return this
         */
        public Builder timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /**
         * @param name base name of the log files (several VMs in one directory)
         * @return this
         */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /**
         * Runs another QEMU binary than the system's {@code qemu-system-x86_64} (a newer build, for
         * example the one with the vfio-user client); the caller has checked that it exists.
         *
         * @param qemu the binary
         * @return this
         */
        public Builder executable(Path qemu) {
            this.executable = qemu;
            return this;
        }

        /**
         * Names the machine type and gives it the shared memfd as its RAM
         * ({@code -machine TYPE,memory-backend=mem}) instead of a NUMA node ({@code -numa node,memdev=mem}).
         *
         * @param type the machine type, for example {@code pc}
         * @return this
         */
        public Builder machine(String type) {
            this.machine = type;
            return this;
        }

        /**
         * Adds raw QEMU arguments, for example {@code "-chardev", "socket,id=c0,path=..."}.
         *
         * @param args the arguments
         * @return this
         */
        public Builder args(String... args) {
            extraArgs.addAll(List.of(args));
            return this;
        }

        /**
         * Adds a vhost-user-blk-pci device whose back-end listens on {@code socket} (QEMU connects).
         *
         * @param socket the back-end's socket
         * @param numQueues virtqueues to ask for
         * @return this
         */
        public Builder vhostUserBlk(Path socket, int numQueues) {
            String id = "vu" + nextChardev++;
            return args("-chardev", "socket,id=" + id + ",path=" + escape(socket),
                    "-device", "vhost-user-blk-pci,chardev=" + id + ",num-queues=" + numQueues);
        }

        /**
         * Adds a virtio-net-pci device with a vhost-user net back-end on {@code socket} (QEMU connects).
         * MSI-X is off ({@code vectors=0}): QEMU 7.2 under TCG crashes with vhost-user virtio-net and MSI-X.
         * No option ROM ({@code romfile=}): the guest boots by {@code -kernel}, iPXE would only cost time.
         *
         * @param socket the back-end's socket
         * @return this
         */
        public Builder vhostUserNet(Path socket) {
            String id = "vu" + nextChardev++;
            return args("-chardev", "socket,id=" + id + ",path=" + escape(socket),
                    "-netdev", "vhost-user,id=n" + id + ",chardev=" + id,
                    "-device", "virtio-net-pci,netdev=n" + id + ",vectors=0,romfile=");
        }

        /**
         * Starts QEMU. Fails or skips (see {@link Peers#require(String)}) when it is not installed.
         *
         * @return the running VM; call {@link QemuVm#awaitExit()}
         * @throws IOException when QEMU cannot be started
         */
        public QemuVm start() throws IOException {
            Path qemu = executable != null ? executable : Peers.require(Peers.QEMU_SYSTEM);
            Files.createDirectories(directory);
            List<String> cmd = new ArrayList<>(List.of(qemu.toString(),
                    "-accel", "tcg", "-m", Integer.toString(memoryMiB), "-smp", "1",
                    "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                    "-object", "memory-backend-memfd,id=mem,size=" + memoryMiB + "M,share=on"));
            if (machine != null) {
                cmd.addAll(List.of("-machine", machine + ",memory-backend=mem"));
            } else {
                cmd.addAll(List.of("-numa", "node,memdev=mem"));
            }
            cmd.addAll(extraArgs);
            cmd.addAll(List.of("-kernel", guest.kernel().toString(), "-initrd", guest.initramfs().toString(),
                    "-append", TinyGuest.KERNEL_APPEND));
            Path stderr = directory.resolve(name + "-stderr.log");
            PeerProcess p = PeerProcess.start("qemu-system-x86_64", cmd, directory.resolve(name + "-console.log"), stderr);
            return new QemuVm(p, stderr, timeout);
        }

        /**
         * Starts QEMU and waits for the guest to power off (bounded by the timeout).
         *
         * @return what the run produced
         * @throws IOException when QEMU cannot be started
         */
        public Result run() throws IOException {
            try (QemuVm vm = start()) {
                return vm.awaitExit();
            }
        }
    }

    private static String escape(Path path) {
        return path.toAbsolutePath().toString().replace(",", ",,");
    }
}
