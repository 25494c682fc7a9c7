package dev.outproc.examples.demo;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.concurrent.Callable;

/** The README's main job: a tour of what outproc does, with real kernel objects and sockets. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {
                "A tour of outproc in one process tree.",
                "",
                "Memfd guest memory shared over a real Unix socket, eventfd notifications",
                "through the epoll event loop, and checksummed data both ways; then a",
                "vhost-user-blk back-end and a virtio-blk driver on outproc's front-end doing",
                "checksummed block I/O; then a live migration of that device between two",
                "independently written back-ends, with the compatibility handshake first, and an",
                "incompatible destination refused with its reasons; then a vfio-user PCI card:",
                "enumerated like lspci -vv, its registers, DMA and interrupt, and its migration",
                "with PRE_COPY to a second server, handshake first."
        })
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--memory-mib", defaultValue = "64", description = "Guest memory size in MiB (default: ${DEFAULT-VALUE}).")
    int memoryMib;

    @Option(names = "--rounds", defaultValue = "1000", description = "Kick/call round trips to run (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--requests", defaultValue = "2000", description = "Block writes of 64 KiB to run (default: ${DEFAULT-VALUE}).")
    int requests;

    @Option(names = "--depth", defaultValue = "16", description = "Block requests in flight (default: ${DEFAULT-VALUE}).")
    int depth;

    @Override
    public Integer call() throws Exception {
        PrintStream out = System.out;
        out.println("outproc demo");
        out.println("============");
        new SharedMemoryTour(out, memoryMib * 1024L * 1024L, rounds).run();
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("outproc-demo");
        try {
            new BlkTour(out, dir, requests, depth).run();
            new MigrationTour(out, dir).run();
            new VfioUserTour(out, dir).run();
        } finally {
            try (var files = java.nio.file.Files.list(dir)) {
                for (java.nio.file.Path p : files.toList()) {
                    java.nio.file.Files.deleteIfExists(p);
                }
            }
            java.nio.file.Files.deleteIfExists(dir);
        }
        out.println();
        out.println("demo complete");
        return 0;
    }
}
