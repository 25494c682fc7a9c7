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

/**
 * The options every vhost-user back-end program takes (vhost-user.rst, "Backend program conventions"):
 * where the socket is, and the JSON capabilities, as picocli options. What they mean is the library's
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
        return new VhostUserBackend.Options(w, busyPoll);
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
        return new BackendArguments(socket == null ? null : socket.socketPath,
                socket == null || socket.fd == null ? -1 : socket.fd, printCapabilities, java.util.List.of());
    }

    /** {@return where the server listens, for messages} */
    public String where() {
        return arguments().where();
    }
}
