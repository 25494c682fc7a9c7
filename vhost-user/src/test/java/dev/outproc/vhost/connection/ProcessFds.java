package dev.outproc.vhost.connection;

import java.io.File;

/**
 * Counts this process's open fds through {@code /proc/self/fd}. (core's test helper of the same purpose
 * lives in a package of the core module, which this module's tests cannot see on the class path.)
 */
final class ProcessFds {
    private ProcessFds() {
    }

    static int count() {
        String[] names = new File("/proc/self/fd").list();
        if (names == null) {
            throw new IllegalStateException("/proc/self/fd is not readable");
        }
        return names.length - 1; // the listing's own fd
    }

    /** Waits up to two seconds for the count to reach {@code expected}; returns the last count. */
    static int settle(int expected) throws InterruptedException {
        int now = count();
        for (int i = 0; i < 100 && now != expected; i++) {
            Thread.sleep(20);
            now = count();
        }
        return now;
    }
}
