package dev.outproc.examples.cli;

import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.program.BackendArguments;
import dev.outproc.vhost.program.BackendProgram;
import dev.outproc.vhost.program.BackendUsageException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The options every vhost-user back-end program takes (vhost-user.rst, "Backend program conventions"):
 * where the socket is, and the JSON capabilities, as picocli options; and this library's tuning and access
 * options (workers, socket mode, peer allow-list, handshake timeout, unsealable-memory policy). What they mean is the library's
 * {@link BackendProgram}: this class only declares them for picocli's help and hands them over.
 */
public final class BackendOptions {
    /** Exactly one of the socket options. */
    public static final class Socket {
        @Option(names = "--socket-path", paramLabel = "PATH",
                description = "Listen on this Unix socket and serve front-end after front-end.")
        Path socketPath;

        @Option(names = "--fd", paramLabel = "FDNUM",
                description = "Use this inherited socket: a listening one is served like --socket-path, a connected one until it closes.")
        Integer fd;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Socket socket;

    @Option(names = "--print-capabilities", description = "Print the back-end's capabilities as JSON and exit.")
    boolean printCapabilities;

    @Option(names = "--workers", paramLabel = "N", defaultValue = "0",
            description = "Worker threads for the queues (default: one per queue, up to the CPU count).")
    int workers;

    @Option(names = "--busy-poll", description = "Poll the rings instead of sleeping (lowest latency, one busy core per worker).")
    boolean busyPoll;

    @Option(names = "--socket-mode", paramLabel = "OCTAL", defaultValue = "0600",
            description = "Permissions of the socket file created for --socket-path (default: ${DEFAULT-VALUE}, the owner only).")
    String socketMode;

    @Option(names = "--allow-uid", paramLabel = "UID[,UID...]", split = ",",
            description = "Admit only front-ends running as these users (SO_PEERCRED, checked before any message; repeatable).")
    List<Long> allowUids = new ArrayList<>();

    @Option(names = "--allow-gid", paramLabel = "GID[,GID...]", split = ",",
            description = "Admit only front-ends whose primary group is one of these (with --allow-uid: either matches; repeatable).")
    List<Long> allowGids = new ArrayList<>();

    @Option(names = "--handshake-timeout-ms", paramLabel = "MS", defaultValue = "30000",
            description = "Disconnect a front-end that sends nothing this long after connecting (0: wait forever; default: ${DEFAULT-VALUE}).")
    int handshakeTimeoutMs;

    @Option(names = "--unsealable-memory", paramLabel = "POLICY", defaultValue = "ACCEPT_WITH_WARNING",
            description = "Memory fds that cannot be sealed against shrinking: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}; "
                    + "accepting them lets a front-end that truncates its memory crash this process).")
    VhostUserBackend.UnsealableMemory unsealableMemory;

    /** {@return whether the capabilities were asked for} */
    public boolean printCapabilities() {
        return printCapabilities;
    }

    /**
     * Checks that exactly one socket option is given.
     *
     * @throws picocli.CommandLine.ParameterException through the caller's spec when missing
     * @return an error message, or {@code null} when fine
     */
    public String missingSocket() {
        try {
            arguments();
            return null;
        } catch (BackendUsageException e) {
            return e.getMessage();
        }
    }

    /** {@return the back-end options} */
    public VhostUserBackend.Options backendOptions() {
        int w = workers > 0 ? workers : Math.max(1, Runtime.getRuntime().availableProcessors());
        return arguments().applyTo(new VhostUserBackend.Options(w, busyPoll).withUnsealableMemory(unsealableMemory));
    }

    /**
     * Starts the server these options describe.
     *
     * @param device the device
     * @return the server (call {@link VhostUserServer#run()})
     * @throws IOException when the socket cannot be used
     */
    public VhostUserServer start(VirtioDevice device) throws IOException {
        return BackendProgram.open(device, backendOptions(), arguments());
    }

    /** {@return these options as the library's program arguments} */
    public BackendArguments arguments() {
        if (handshakeTimeoutMs < 0) {
            throw new BackendUsageException("--handshake-timeout-ms must be >= 0, got " + handshakeTimeoutMs);
        }
        return new BackendArguments(socket == null ? null : socket.socketPath,
                socket == null || socket.fd == null ? -1 : socket.fd, printCapabilities, List.of(),
                BackendArguments.parseSocketMode(socketMode), Set.copyOf(allowUids), Set.copyOf(allowGids),
                Duration.ofMillis(handshakeTimeoutMs));
    }

    /** {@return where the server listens, for messages} */
    public String where() {
        return arguments().where();
    }
}
