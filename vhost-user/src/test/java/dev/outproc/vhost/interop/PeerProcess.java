package dev.outproc.vhost.interop;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One external peer process whose output goes to a log file, with bounded waits everywhere: a test
 * that talks to a peer must fail with the peer's log in the message, never hang.
 */
final class PeerProcess implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(PeerProcess.class.getName());
    private static final Duration TERM_GRACE = Duration.ofSeconds(5);
    private static final int LOG_TAIL_CHARS = 4000;

    private final String name;
    private final List<String> command;
    private final Path log;
    private final Process process;

    private PeerProcess(String name, List<String> command, Path log, Process process) {
        this.name = name;
        this.command = command;
        this.log = log;
        this.process = process;
    }

    /**
     * Starts a process with stdin from {@code /dev/null} and stdout+stderr into {@code log}.
     *
     * @param name what the process is, for messages
     * @param command the command line
     * @param log where its output goes (truncated)
     * @return the running process
     * @throws IOException when it cannot be started
     */
    static PeerProcess start(String name, List<String> command, Path log) throws IOException {
        return start(name, command, log, null);
    }

    /**
     * Starts a process with stdin from {@code /dev/null}, stdout into {@code log} and stderr into
     * {@code errorLog} (or into {@code log} when null).
     */
    static PeerProcess start(String name, List<String> command, Path log, Path errorLog) throws IOException {
        Files.createDirectories(log.toAbsolutePath().getParent());
        ProcessBuilder pb = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(log.toFile());
        if (errorLog == null) {
            pb.redirectErrorStream(true);
        } else {
            pb.redirectError(errorLog.toFile());
        }
        LOG.log(Level.DEBUG, () -> "starting " + name + ": " + String.join(" ", command));
        return new PeerProcess(name, List.copyOf(command), log, pb.start());
    }

    /** {@return the command line, as one shell-like string for reports} */
    String commandLine() {
        return String.join(" ", command);
    }

    /** {@return the log file} */
    Path log() {
        return log;
    }

    /** {@return the process} */
    Process process() {
        return process;
    }

    /** {@return the whole log as text (empty if unreadable)} */
    String logText() {
        try {
            return Files.readString(log, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            return "";
        }
    }

    /** {@return the end of the log, for failure messages} */
    String logTail() {
        String text = logText();
        return text.length() <= LOG_TAIL_CHARS ? text : "..." + text.substring(text.length() - LOG_TAIL_CHARS);
    }

    /** {@return a description for failure messages: command, exit state, log tail} */
    String describe() {
        String state = process.isAlive() ? "running" : "exited with " + process.exitValue();
        return name + " (" + state + ")\n  command: " + commandLine() + "\n  log " + log + ":\n" + logTail();
    }

    /**
     * Waits for the process to exit.
     *
     * @param timeout the longest wait
     * @return whether it exited within the timeout
     */
    boolean awaitExit(Duration timeout) {
        try {
            return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Waits until a Unix stream socket accepts a connection, then closes that probe connection.
     * Fails early if the process exits first.
     *
     * @param socket the socket path the process listens on
     * @param timeout the longest wait
     * @throws IOException when the socket does not accept in time or the process died
     */
    void awaitSocketAccepts(Path socket, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() - deadline < 0) {
            if (!process.isAlive()) {
                throw new IOException("peer exited before listening on " + socket + ": " + describe());
            }
            if (Files.exists(socket)) {
                try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                    probe.connect(UnixDomainSocketAddress.of(socket));
                    return;
                } catch (IOException e) {
                    last = e;
                }
            }
            sleepMillis(20);
        }
        IOException e = new IOException("socket " + socket + " did not accept within " + timeout + ": " + describe());
        if (last != null) {
            e.addSuppressed(last);
        }
        throw e;
    }

    /** Stops the process: SIGTERM, a bounded grace period, then SIGKILL (also of its children). */
    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            if (!awaitExit(TERM_GRACE)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                if (!awaitExit(TERM_GRACE)) {
                    LOG.log(Level.WARNING, () -> name + " pid " + process.pid() + " survived SIGKILL");
                }
            }
        }
    }

    /** Kills the process at once (SIGKILL), for timeouts. */
    void kill() {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        awaitExit(TERM_GRACE);
    }

    static void sleepMillis(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new java.io.InterruptedIOException("interrupted while waiting for a peer"));
        }
    }
}
