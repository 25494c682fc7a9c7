package dev.outproc.examples.demo;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.concurrent.Callable;

/** The README's main job: a tour of what outproc does, with real kernel objects and sockets. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {
                "A tour of outproc in one process tree: memfd guest memory shared over a real Unix socket,",
                "eventfd notifications through the epoll event loop, and checksummed data both ways."
        })
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--memory-mib", defaultValue = "64", description = "Guest memory size in MiB (default: ${DEFAULT-VALUE}).")
    int memoryMib;

    @Option(names = "--rounds", defaultValue = "1000", description = "Kick/call round trips to run (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Override
    public Integer call() throws Exception {
        PrintStream out = System.out;
        out.println("outproc demo");
        out.println("============");
        new SharedMemoryTour(out, memoryMib * 1024L * 1024L, rounds).run();
        return 0;
    }
}
