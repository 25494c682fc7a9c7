package dev.outproc.vhost.program;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The arguments every vhost-user back-end program takes (vhost-user.rst, "Backend program
 * conventions"): {@code --socket-path=PATH} or {@code --fd=FDNUM} (exactly one), and
 * {@code --print-capabilities}. Both {@code --option value} and {@code --option=value} are accepted.
 * Arguments of the program's own are kept, in order, in {@link #others()}.
 *
 * @param socketPath where to listen, or {@code null}
 * @param fd the inherited socket, or -1
 * @param printCapabilities whether the capabilities were asked for
 * @param others the arguments that are not the conventions' own
 */
public record BackendArguments(Path socketPath, int fd, boolean printCapabilities, List<String> others) {
    /**
     * Checks the combination: exactly one of {@code socketPath} and {@code fd} unless only the
     * capabilities are asked for.
     */
    public BackendArguments {
        others = List.copyOf(others);
        if (socketPath != null && fd >= 0) {
            throw new BackendUsageException("--socket-path and --fd exclude each other");
        }
        if (!printCapabilities && socketPath == null && fd < 0) {
            throw new BackendUsageException("one of --socket-path=PATH or --fd=FDNUM is required");
        }
    }

    /**
     * Parses a command line.
     *
     * @param args the program's arguments
     * @return them, checked
     * @throws BackendUsageException when an option lacks its value, is given twice, or the socket options
     *         are missing or both given
     */
    public static BackendArguments parse(String... args) {
        Path socketPath = null;
        int fd = -1;
        boolean capabilities = false;
        List<String> others = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            switch (name) {
                case "--socket-path" -> {
                    if (socketPath != null) {
                        throw new BackendUsageException("--socket-path given twice");
                    }
                    String value = value(args, i, arg);
                    i += arg.contains("=") ? 0 : 1;
                    socketPath = Path.of(value);
                }
                case "--fd" -> {
                    if (fd >= 0) {
                        throw new BackendUsageException("--fd given twice");
                    }
                    String value = value(args, i, arg);
                    i += arg.contains("=") ? 0 : 1;
                    fd = parseFd(value);
                }
                case "--print-capabilities" -> {
                    if (arg.contains("=")) {
                        throw new BackendUsageException("--print-capabilities takes no value, got '" + arg + "'");
                    }
                    capabilities = true;
                }
                default -> others.add(arg);
            }
        }
        return new BackendArguments(socketPath, fd, capabilities, others);
    }

    private static String value(String[] args, int i, String arg) {
        int eq = arg.indexOf('=');
        if (eq >= 0) {
            String value = arg.substring(eq + 1);
            if (value.isEmpty()) {
                throw new BackendUsageException(arg.substring(0, eq) + " needs a value");
            }
            return value;
        }
        if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
            throw new BackendUsageException(arg + " needs a value");
        }
        return args[i + 1];
    }

    /**
     * Parses a file descriptor number.
     *
     * @param text the number
     * @return it
     * @throws BackendUsageException when it is not a number in 0..Integer.MAX_VALUE
     */
    public static int parseFd(String text) {
        try {
            int fd = Integer.parseInt(text);
            if (fd < 0) {
                throw new BackendUsageException("--fd must be >= 0, got " + fd);
            }
            return fd;
        } catch (NumberFormatException e) {
            throw new BackendUsageException("--fd needs a file descriptor number, got '" + text + "'");
        }
    }

    /** {@return where the back-end listens, for messages: the path, or {@code fd N}} */
    public String where() {
        return socketPath != null ? socketPath.toString() : "fd " + fd;
    }
}
