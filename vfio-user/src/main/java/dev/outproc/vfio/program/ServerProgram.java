package dev.outproc.vfio.program;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.CleanExit;
import dev.outproc.core.transport.UnixListener;
import dev.outproc.vfio.server.ServerOptions;
import dev.outproc.vfio.server.VfioUserDevice;
import dev.outproc.vfio.server.VfioUserServer;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * What every vfio-user server program does around its device: take {@code --socket-path PATH} (listen there) or
 * {@code --fd FDNUM} (an inherited listening socket), serve client after client (each finds a reset device), and
 * stop cleanly on SIGTERM or SIGINT: the client is disconnected, the listener closed and the socket file it created
 * removed. vfio-user defines no program conventions of its own; these are the ones of vhost-user back-ends
 * (vhost-user.rst, "Backend program conventions") that apply, as outproc's vhost-user side offers them.
 *
 * <p>A program with no options of its own is one line:
 * {@snippet :
 * public static void main(String[] args) {
 *     System.exit(ServerProgram.main(args, "my-card", MyCard::device));
 * }
 * }
 * A program with a command-line library of its own parses the options itself and calls {@link #serve(VfioUserServer,
 * Path)} or {@link #serve(VfioUserServer, OwnedFd)}.
 *
 * <p>The shutdown hook exists before the socket file does: a signal that arrives while the socket is being bound
 * waits for the bind to finish and then closes it, so no socket file outlives the process, whatever moment the
 * signal picks.
 */
public final class ServerProgram {
    /** Exit status for a wrong command line (2, like getopt tools). */
    public static final int EXIT_USAGE = 2;
    /** Exit status when serving fails (the socket cannot be used, the device cannot be made). */
    public static final int EXIT_FAILURE = 1;

    private ServerProgram() {
    }

    /**
     * Runs a server program that takes {@code --socket-path PATH} or {@code --fd FDNUM} and {@code --help}, and
     * nothing else. Errors are one line on standard error, never a stack trace.
     *
     * @param args the command line
     * @param name the program's name, for messages and the usage line
     * @param device makes the device, once the command line is known to be right; a device that is
     *     {@link AutoCloseable} is closed when serving ends
     * @return the exit status: 0, {@link #EXIT_USAGE} or {@link #EXIT_FAILURE}
     */
    public static int main(String[] args, String name, Supplier<? extends VfioUserDevice> device) {
        return run(args, name, device, System.out, System.err);
    }

    static int run(String[] args, String name, Supplier<? extends VfioUserDevice> device, PrintStream out, PrintStream err) {
        String usage = "usage: " + name + " (--socket-path PATH | --fd FDNUM)";
        Path socketPath = null;
        Integer fd = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                out.println(usage);
                out.println("Serves a vfio-user device on a Unix socket, client after client, until SIGTERM or SIGINT.");
                out.println("  --socket-path PATH  listen on this path (its socket file is removed on exit)");
                out.println("  --fd FDNUM          serve on this inherited listening socket");
                return 0;
            }
            String option = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
            if (!option.equals("--socket-path") && !option.equals("--fd")) {
                return usageError(err, name, usage, "unknown argument '" + a + "'");
            }
            String value;
            if (a.contains("=")) {
                value = a.substring(a.indexOf('=') + 1);
            } else if (i + 1 < args.length) {
                value = args[++i];
            } else {
                return usageError(err, name, usage, option + " needs a value");
            }
            if (socketPath != null || fd != null) {
                return usageError(err, name, usage, "give one of --socket-path and --fd, once");
            }
            if (option.equals("--socket-path")) {
                if (value.isEmpty()) {
                    return usageError(err, name, usage, "--socket-path needs a path");
                }
                socketPath = Path.of(value);
            } else {
                try {
                    fd = Integer.parseInt(value);
                } catch (NumberFormatException e) {
                    fd = -1;
                }
                if (fd < 0) {
                    return usageError(err, name, usage, "--fd needs a file descriptor number, got '" + value + "'");
                }
            }
        }
        if (socketPath == null && fd == null) {
            return usageError(err, name, usage, "one of --socket-path=PATH or --fd=FDNUM is required");
        }
        String where = socketPath != null ? socketPath.toString() : "fd " + fd;
        VfioUserDevice d;
        try {
            d = device.get();
        } catch (UncheckedIOException | IllegalArgumentException | IllegalStateException e) {
            err.println(name + ": " + (e instanceof UncheckedIOException u ? u.getCause().getMessage() : e.getMessage()));
            return EXIT_FAILURE;
        }
        try {
            VfioUserServer server = new VfioUserServer(d, ServerOptions.DEFAULTS);
            err.println(name + ": serving on " + where);
            if (socketPath != null) {
                serve(server, socketPath);
            } else {
                serve(server, OwnedFd.of(fd));
            }
            return 0;
        } catch (IOException | IllegalArgumentException e) {
            String m = String.valueOf(e.getMessage());
            err.println(name + ": " + (m.contains(where) ? m : where + ": " + m));
            return EXIT_FAILURE;
        } finally {
            if (d instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    err.println(name + ": closing the device: " + e.getMessage());
                }
            }
        }
    }

    private static int usageError(PrintStream err, String name, String usage, String message) {
        err.println(name + ": " + message);
        err.println(usage);
        return EXIT_USAGE;
    }

    /**
     * Listens on a path and serves client after client until SIGTERM or SIGINT, which disconnects the client,
     * closes the listener and removes the socket file. A live listener already at the path is refused; a stale
     * socket file is replaced.
     *
     * @param server the server
     * @param socketPath where to listen
     * @throws IOException when the path cannot be bound
     */
    public static void serve(VfioUserServer server, Path socketPath) throws IOException {
        serve(server, () -> UnixListener.bind(socketPath));
    }

    /**
     * Serves client after client on an inherited listening socket until SIGTERM or SIGINT, which disconnects the
     * client and closes the socket.
     *
     * @param server the server
     * @param listening the inherited listening socket (owned from now on)
     * @throws IOException when the fd is not a listening Unix socket
     */
    public static void serve(VfioUserServer server, OwnedFd listening) throws IOException {
        serve(server, () -> UnixListener.adopt(listening));
    }

    private static void serve(VfioUserServer server, CleanExit.Opener<UnixListener> opener) throws IOException {
        // The signal closes the listener (removing its socket file) and then disconnects the client.
        try (CleanExit exit = new CleanExit("vfio-user")) {
            exit.onStop(server::disconnectClient);
            server.serve(exit.open(opener));
        }
    }
}
