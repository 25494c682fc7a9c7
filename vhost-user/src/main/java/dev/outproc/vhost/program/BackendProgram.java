package dev.outproc.vhost.program;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.virtio.VirtioDevice;
import dev.outproc.vhost.backend.VhostUserBackend;
import dev.outproc.vhost.backend.VhostUserServer;

import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * What every vhost-user back-end program does around its device, following vhost-user.rst "Backend
 * program conventions": take {@code --socket-path} or {@code --fd}, answer {@code --print-capabilities}
 * with the JSON the conventions define, serve front-end after front-end, and stop cleanly on SIGTERM or
 * SIGINT (the server closes, the socket file it created is removed, the process exits).
 *
 * <p>A program with no options of its own is one line:
 * {@snippet :
 * public static void main(String[] args) {
 *     System.exit(BackendProgram.main(args, "rng", List.of(), RngDevice::new));
 * }
 * }
 * One with options of its own reads them from {@link BackendArguments#others()} in
 * {@link #mainWithOptions}.
 * A program with a command-line library of its own (picocli, ...) parses the conventions' options
 * itself and calls {@link #open} and {@link #serve}; {@link #printCapabilities} prints the JSON.
 */
public final class BackendProgram {
    /** Exit status for a wrong command line (as {@code sysexits.h}'s EX_USAGE is not universal, 2 like getopt tools). */
    public static final int EXIT_USAGE = 2;
    /** Exit status when serving fails (the socket cannot be used, the device refuses to start). */
    public static final int EXIT_FAILURE = 1;

    /** How long a shutdown hook waits for a server that is being opened. */
    private static final long OPEN_WAIT_SECONDS = 5;
    /** The shutdown hook of each server {@link #open} made, until {@link #serve} returns. */
    private static final Map<VhostUserServer, Thread> HOOKS = new ConcurrentHashMap<>();

    private BackendProgram() {
    }

    /**
     * Runs a back-end program that takes no options beyond the conventions' (any other argument is a
     * usage error); see {@link #mainWithOptions}.
     *
     * @param args the command line
     * @param type the capabilities' {@code type}
     * @param capabilityFeatures the capabilities' {@code features}
     * @param device makes the device
     * @return the exit status: 0, {@link #EXIT_USAGE} or {@link #EXIT_FAILURE}
     */
    public static int main(String[] args, String type, List<String> capabilityFeatures,
                           Supplier<? extends VirtioDevice> device) {
        return mainWithOptions(args, type, capabilityFeatures, arguments -> {
            if (!arguments.others().isEmpty()) {
                throw new BackendUsageException("unknown argument '" + arguments.others().getFirst() + "'");
            }
            return device.get();
        });
    }

    /**
     * Runs a back-end program: parses the conventions' options, prints the capabilities or serves the
     * device until SIGTERM/SIGINT (or, with a connected {@code --fd}, until the front-end leaves). Errors
     * are one line on standard error, never a stack trace.
     *
     * @param args the command line
     * @param type the capabilities' {@code type} ("block", "net", "rng", ... as vhost-user.json names it)
     * @param capabilityFeatures the capabilities' {@code features}
     * @param device makes the device from the parsed arguments (its own options are in
     *        {@link BackendArguments#others()}); may throw {@link BackendUsageException}
     * @return the exit status: 0, {@link #EXIT_USAGE} or {@link #EXIT_FAILURE}
     */
    public static int mainWithOptions(String[] args, String type, List<String> capabilityFeatures,
                                      Function<BackendArguments, ? extends VirtioDevice> device) {
        BackendArguments arguments;
        VirtioDevice made;
        try {
            arguments = BackendArguments.parse(args);
            if (arguments.printCapabilities()) {
                printCapabilities(System.out, type, capabilityFeatures);
                return 0;
            }
            made = device.apply(arguments);
        } catch (BackendUsageException e) {
            System.err.println(type + ": " + e.getMessage());
            return EXIT_USAGE;
        }
        try (VhostUserServer server = open(made, VhostUserBackend.Options.defaults(), arguments)) {
            System.err.println(type + ": serving on " + arguments.where());
            serve(server);
            return 0;
        } catch (IOException e) {
            System.err.println(type + ": " + e.getMessage());
            return EXIT_FAILURE;
        }
    }

    /**
     * Opens the server the arguments name: listens on {@code --socket-path}, or uses the inherited
     * {@code --fd} (listening: like a path; connected: that one front-end). From before the socket
     * exists, a shutdown hook closes the server on SIGTERM or SIGINT, which removes the socket file:
     * a signal that arrives before {@link #serve} leaves no stale socket behind either.
     *
     * @param device the device
     * @param options back-end tuning
     * @param arguments parsed arguments, not {@link BackendArguments#printCapabilities() capabilities only}
     * @return the server, not yet running
     * @throws IOException when the socket cannot be used
     */
    public static VhostUserServer open(VirtioDevice device, VhostUserBackend.Options options, BackendArguments arguments)
            throws IOException {
        if (arguments.socketPath() == null && arguments.fd() < 0) {
            throw new BackendUsageException("one of --socket-path=PATH or --fd=FDNUM is required");
        }
        AtomicReference<VhostUserServer> opened = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            // The socket file exists before the server object does (the back-end starts its workers
            // after binding): a signal in between waits for the server, then closes it.
            try {
                done.await(OPEN_WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            VhostUserServer server = opened.get();
            if (server != null) {
                server.close();
            }
        }, "vhost-user-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            VhostUserServer server = arguments.socketPath() != null
                    ? VhostUserServer.listen(device, options, arguments.socketPath())
                    : VhostUserServer.inherited(device, options, OwnedFd.of(arguments.fd()));
            opened.set(server);
            HOOKS.put(server, hook);
            return server;
        } catch (IOException | RuntimeException e) {
            removeHook(hook);
            throw e;
        } finally {
            done.countDown();
        }
    }

    /**
     * Serves until the server is closed, the single front-end of a connected {@code --fd} leaves, or the
     * process gets SIGTERM or SIGINT: the shutdown hook {@link #open} installed then closes the server,
     * which stops the connection and the workers and removes the socket file it created. A server made
     * without {@link #open} gets the same hook here.
     *
     * @param server the server
     */
    public static void serve(VhostUserServer server) {
        Thread hook = HOOKS.computeIfAbsent(server, s -> {
            Thread h = new Thread(s::close, "vhost-user-shutdown");
            Runtime.getRuntime().addShutdownHook(h);
            return h;
        });
        try {
            server.run();
        } finally {
            HOOKS.remove(server);
            removeHook(hook);
        }
    }

    private static void removeHook(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running (SIGTERM): it closes the server
        }
    }

    /**
     * Prints {@code {"type": TYPE, "features": [...]}} as the conventions define (vhost-user.json),
     * followed by a newline.
     *
     * @param out where to print
     * @param type the device type
     * @param features the capability features (may be empty)
     */
    public static void printCapabilities(PrintStream out, String type, List<String> features) {
        StringBuilder json = new StringBuilder("{\n  \"type\" : ").append(quote(type));
        if (!features.isEmpty()) {
            json.append(",\n  \"features\" : [ ");
            for (int i = 0; i < features.size(); i++) {
                json.append(i == 0 ? "" : ", ").append(quote(features.get(i)));
            }
            json.append(" ]");
        }
        out.println(json.append("\n}"));
    }

    /** Quotes a capability name; the conventions' names are plain ASCII words, so anything else is refused. */
    private static String quote(String s) {
        if (!s.matches("[A-Za-z0-9_.-]+")) {
            throw new IllegalArgumentException("a capability name is letters, digits, '.', '_' or '-', got '" + s + "'");
        }
        return "\"" + s + "\"";
    }
}
