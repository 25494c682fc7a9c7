package dev.outproc.vhost.program;

import dev.outproc.core.transport.PeerAllowList;
import dev.outproc.vhost.backend.VhostUserBackend;

import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The arguments every vhost-user back-end program takes (vhost-user.rst, "Backend program
 * conventions"): {@code --socket-path=PATH} or {@code --fd=FDNUM} (exactly one), and
 * {@code --print-capabilities}; and this library's access options: {@code --socket-mode=OCTAL} (the
 * socket file's permissions, 0600 by default), {@code --allow-uid=UID[,UID...]} and
 * {@code --allow-gid=GID[,GID...]} (who may connect, checked with SO_PEERCRED; anyone the mode admits
 * when neither is given; repeatable), {@code --handshake-timeout-ms=MS} (how long a new front-end may stay
 * silent, 0 for forever). Both {@code --option value} and {@code --option=value} are accepted.
 * Arguments of the program's own are kept, in order, in {@link #others()}.
 *
 * @param socketPath where to listen, or {@code null}
 * @param fd the inherited socket, or -1
 * @param printCapabilities whether the capabilities were asked for
 * @param others the arguments that are not the conventions' own
 * @param socketMode the socket file's permissions, or {@code null} for the default (0600)
 * @param allowUids admitted user ids (empty with {@code allowGids} empty: anyone the mode admits)
 * @param allowGids admitted group ids
 * @param handshakeTimeout how long a new front-end may stay silent, or {@code null} for the default
 */
public record BackendArguments(Path socketPath, int fd, boolean printCapabilities, List<String> others,
                               Set<PosixFilePermission> socketMode, Set<Long> allowUids, Set<Long> allowGids,
                               Duration handshakeTimeout) {
    /** The options that take a value, after {@code =} or as the next argument. */
    private static final Set<String> VALUE_OPTIONS = Set.of("--socket-path", "--fd", "--socket-mode", "--allow-uid",
            "--allow-gid", "--handshake-timeout-ms");

    /**
     * Arguments with the access options at their defaults.
     *
     * @param socketPath where to listen, or {@code null}
     * @param fd the inherited socket, or -1
     * @param printCapabilities whether the capabilities were asked for
     * @param others the arguments that are not the conventions' own
     */
    public BackendArguments(Path socketPath, int fd, boolean printCapabilities, List<String> others) {
        this(socketPath, fd, printCapabilities, others, null, Set.of(), Set.of(), null);
    }

    /**
     * Checks the combination: exactly one of {@code socketPath} and {@code fd} unless only the
     * capabilities are asked for.
     */
    public BackendArguments {
        others = List.copyOf(others);
        socketMode = socketMode == null ? null : Set.copyOf(socketMode);
        allowUids = Set.copyOf(allowUids);
        allowGids = Set.copyOf(allowGids);
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
        Set<PosixFilePermission> socketMode = null;
        Set<Long> uids = new LinkedHashSet<>();
        Set<Long> gids = new LinkedHashSet<>();
        Duration handshake = null;
        List<String> others = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            boolean inline = arg.contains("=");
            String name = inline ? arg.substring(0, arg.indexOf('=')) : arg;
            switch (name) {
                case "--socket-path" -> {
                    onlyOnce(socketPath != null, name);
                    socketPath = Path.of(value(args, i, arg));
                }
                case "--fd" -> {
                    onlyOnce(fd >= 0, name);
                    fd = parseFd(value(args, i, arg));
                }
                case "--print-capabilities" -> {
                    if (inline) {
                        throw new BackendUsageException("--print-capabilities takes no value, got '" + arg + "'");
                    }
                    capabilities = true;
                }
                case "--socket-mode" -> {
                    onlyOnce(socketMode != null, name);
                    socketMode = parseSocketMode(value(args, i, arg));
                }
                case "--allow-uid", "--allow-gid" ->
                        (name.equals("--allow-uid") ? uids : gids).addAll(parseIds(name, value(args, i, arg)));
                case "--handshake-timeout-ms" -> {
                    onlyOnce(handshake != null, name);
                    handshake = parseHandshakeTimeout(value(args, i, arg));
                }
                default -> others.add(arg);
            }
            if (!inline && VALUE_OPTIONS.contains(name)) {
                i++; // the value was the next argument
            }
        }
        return new BackendArguments(socketPath, fd, capabilities, others, socketMode, uids, gids, handshake);
    }

    /**
     * {@return {@code base} with the access options these arguments give (the others as in {@code base})}
     *
     * @param base the back-end options to start from
     */
    public VhostUserBackend.Options applyTo(VhostUserBackend.Options base) {
        VhostUserBackend.Options options = base;
        if (socketMode != null) {
            options = options.withSocketMode(socketMode);
        }
        if (!allowUids.isEmpty() || !allowGids.isEmpty()) {
            options = options.withPeers(PeerAllowList.of(allowUids, allowGids));
        }
        if (handshakeTimeout != null) {
            options = options.withHandshakeTimeout(handshakeTimeout);
        }
        return options;
    }

    /**
     * Parses a socket file mode in octal ({@code 0600}, {@code 660}); only the permission bits.
     *
     * @param text the mode
     * @return the permissions
     * @throws BackendUsageException when it is not an octal number of at most 0777
     */
    public static Set<PosixFilePermission> parseSocketMode(String text) {
        int mode;
        try {
            mode = Integer.parseInt(text, 8);
        } catch (NumberFormatException e) {
            throw new BackendUsageException("--socket-mode needs an octal mode such as 0600, got '" + text + "'");
        }
        if (mode < 0 || mode > 0777) {
            throw new BackendUsageException("--socket-mode must be 0..0777 (permission bits only), got '" + text + "'");
        }
        StringBuilder rwx = new StringBuilder(9);
        String letters = "rwxrwxrwx";
        for (int bit = 8; bit >= 0; bit--) {
            rwx.append((mode & (1 << bit)) != 0 ? letters.charAt(8 - bit) : '-');
        }
        return PosixFilePermissions.fromString(rwx.toString());
    }

    /**
     * Parses a comma-separated list of user or group ids.
     *
     * @param option the option's name, for messages
     * @param text the ids
     * @return them
     * @throws BackendUsageException when an id is not a number in 0..4294967294
     */
    public static Set<Long> parseIds(String option, String text) {
        Set<Long> ids = new LinkedHashSet<>();
        for (String part : text.split(",", -1)) {
            try {
                long id = Long.parseLong(part.trim());
                if (id < 0 || id > 0xffff_fffeL) {
                    throw new BackendUsageException(option + " ids must be 0..4294967294, got " + id);
                }
                ids.add(id);
            } catch (NumberFormatException e) {
                throw new BackendUsageException(option + " needs numeric ids separated by commas, got '" + text + "'");
            }
        }
        return ids;
    }

    /**
     * Parses a handshake timeout in milliseconds (0: wait forever).
     *
     * @param text the number
     * @return the timeout
     * @throws BackendUsageException when it is not a number in 0..Integer.MAX_VALUE
     */
    public static Duration parseHandshakeTimeout(String text) {
        try {
            int ms = Integer.parseInt(text);
            if (ms < 0) {
                throw new BackendUsageException("--handshake-timeout-ms must be >= 0, got " + ms);
            }
            return Duration.ofMillis(ms);
        } catch (NumberFormatException e) {
            throw new BackendUsageException("--handshake-timeout-ms needs a number of milliseconds, got '" + text + "'");
        }
    }

    /** Refuses an option given a second time. */
    private static void onlyOnce(boolean givenBefore, String name) {
        if (givenBefore) {
            throw new BackendUsageException(name + " given twice");
        }
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
