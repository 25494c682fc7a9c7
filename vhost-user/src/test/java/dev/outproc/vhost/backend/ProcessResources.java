package dev.outproc.vhost.backend;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What a process holds, read from {@code /proc/self}: open fds, threads, mappings ({@code maps} lines, mapped
 * bytes, and the mappings of memfds, which is where guest memory, inflight areas and logs live) and the heap
 * in use after a full collection. Soak and fault tests compare a snapshot before against one after.
 *
 * @param fds open fds
 * @param threads live threads (tasks of the process, the JVM's own included, except the JDK's pooled helpers that
 *        linger after use: the process reaper of {@link Process} and common fork-join workers, and JUnit's
 *        timeout watcher)
 * @param mapsLines lines of {@code /proc/self/maps}
 * @param mappedBytes bytes of address space mapped
 * @param memfdMappings mappings of memfd files
 * @param heapBytes heap in use after {@code System.gc()}
 */
record ProcessResources(int fds, int threads, int mapsLines, long mappedBytes, int memfdMappings, long heapBytes) {

    static ProcessResources now() {
        System.gc();
        System.gc();
        Runtime rt = Runtime.getRuntime();
        long heap = rt.totalMemory() - rt.freeMemory();
        List<String> maps;
        try {
            maps = Files.readAllLines(Path.of("/proc/self/maps"));
        } catch (IOException e) {
            throw new IllegalStateException("/proc/self/maps is not readable", e);
        }
        long bytes = 0;
        int memfds = 0;
        for (String line : maps) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            bytes += Long.parseUnsignedLong(line.substring(dash + 1, space), 16) - Long.parseUnsignedLong(line.substring(0, dash), 16);
            if (line.contains("/memfd:")) {
                memfds++;
            }
        }
        return new ProcessResources(TestFds.count(), liveThreads(), maps.size(), bytes, memfds, heap);
    }

    private static int liveThreads() {
        String[] tasks = new File("/proc/self/task").list();
        if (tasks == null) {
            throw new IllegalStateException("/proc/self/task is not readable");
        }
        int n = 0;
        for (String task : tasks) {
            String name;
            try {
                name = Files.readString(Path.of("/proc/self/task", task, "comm")).trim();
            } catch (IOException e) {
                continue; // ended meanwhile
            }
            // comm is cut at 15 characters: "junit-jupiter-t" is JUnit's @Timeout watcher, started with the first timed test.
            if (!name.startsWith("process reaper") && !name.startsWith("ForkJoinPool") && !name.startsWith("junit-jupiter-t")) {
                n++;
            }
        }
        return n;
    }

    /** {@return the snapshot once fds, threads and memfd mappings equal {@code baseline}'s, or the last one after five seconds} */
    static ProcessResources settle(ProcessResources baseline) {
        ProcessResources now = now();
        for (int i = 0; i < 50 && (now.fds > baseline.fds || now.threads > baseline.threads
                || now.memfdMappings > baseline.memfdMappings); i++) {
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            now = now();
        }
        return now;
    }

    @Override
    public String toString() {
        return "fds " + fds + ", threads " + threads + ", maps lines " + mapsLines + ", mapped " + (mappedBytes >> 20)
                + " MiB, memfd mappings " + memfdMappings + ", heap after GC " + (heapBytes >> 10) + " KiB";
    }
}
