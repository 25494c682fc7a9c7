package dev.outproc.vhost.backend;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.LockSupport;

/**
 * This process's open fds through {@code /proc/self/fd}, for leak checks. (core's {@code OpenFds} sits in
 * a package of the core module, which this module's tests cannot read on the module path.)
 */
final class TestFds {
    private TestFds() {
    }

    static int count() {
        String[] names = new File("/proc/self/fd").list();
        if (names == null) {
            throw new IllegalStateException("/proc/self/fd is not readable");
        }
        return names.length - 1; // the listing's own fd
    }

    /** {@return fd number to target, for a readable leak report} */
    static Map<Integer, String> snapshot() {
        Map<Integer, String> map = new TreeMap<>();
        String[] names = new File("/proc/self/fd").list();
        if (names != null) {
            for (String name : names) {
                try {
                    map.put(Integer.parseInt(name), Files.readSymbolicLink(Path.of("/proc/self/fd", name)).toString());
                } catch (IOException | NumberFormatException e) {
                    // closed meanwhile (the listing's own fd)
                }
            }
        }
        return map;
    }

    /** {@return the fds open now that were not in {@code before}} */
    static Map<Integer, String> newSince(Map<Integer, String> before) {
        Map<Integer, String> now = snapshot();
        now.entrySet().removeIf(e -> e.getValue().equals(before.get(e.getKey())));
        return now;
    }

    /** Waits up to five seconds for the count to reach {@code expected} (other threads close fds); returns the last count. */
    static int settle(int expected) {
        int now = count();
        for (int i = 0; i < 250 && now != expected; i++) {
            LockSupport.parkNanos(20_000_000L);
            now = count();
        }
        return now;
    }

    /** {@return the count once it stayed the same for five samples 20 ms apart} */
    static int stable() {
        int last = -1;
        int same = 0;
        for (int i = 0; i < 200 && same < 5; i++) {
            int now = count();
            same = now == last ? same + 1 : 0;
            last = now;
            LockSupport.parkNanos(20_000_000L);
        }
        return last;
    }
}
