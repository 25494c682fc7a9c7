package dev.outproc.core.fd;

import java.io.File;

/** Counts this process's open fds through {@code /proc/self/fd}, for leak checks in tests. */
public final class OpenFds {
    private OpenFds() {
    }

    /** {@return the number of open fds of this process} */
    public static int count() {
        String[] names = new File("/proc/self/fd").list();
        if (names == null) {
            throw new IllegalStateException("/proc/self/fd is not readable");
        }
        return names.length - 1; // the directory listing's own fd
    }

    /** {@return the targets of this process's open fds, by fd number, for a readable leak report} */
    public static java.util.Map<Integer, String> snapshot() {
        java.util.Map<Integer, String> map = new java.util.TreeMap<>();
        String[] names = new File("/proc/self/fd").list();
        if (names != null) {
            for (String name : names) {
                try {
                    map.put(Integer.parseInt(name), java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd", name)).toString());
                } catch (java.io.IOException | NumberFormatException e) {
                    // closed meanwhile (the listing's own fd)
                }
            }
        }
        return map;
    }

    /**
     * {@return the fds open now that were not open in {@code before}, with their targets}
     *
     * @param before an earlier {@link #snapshot()}
     */
    public static java.util.Map<Integer, String> newSince(java.util.Map<Integer, String> before) {
        java.util.Map<Integer, String> now = snapshot();
        now.entrySet().removeIf(e -> e.getValue().equals(before.get(e.getKey())));
        return now;
    }

    /**
     * Waits briefly for the count to return to {@code expected} (fds closed by other threads), then returns it.
     *
     * @param expected the count to wait for
     * @return the count at the end of the wait
     */
    public static int settle(int expected) {
        int now = count();
        for (int i = 0; i < 100 && now != expected; i++) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            now = count();
        }
        return now;
    }
}
