package dev.outproc.examples.rng;

import dev.outproc.vhost.program.BackendProgram;

import java.util.List;

/**
 * The virtio-rng back-end as a program of its own, without picocli: the library's
 * {@link BackendProgram} takes {@code --socket-path}/{@code --fd}, answers {@code --print-capabilities}
 * and stops cleanly on SIGTERM. The guide shows it; {@code vhost-user-rng} is the same device as a
 * subcommand of the examples jar.
 */
public final class StandaloneRngBackend {
    private StandaloneRngBackend() {
    }

    /**
     * Serves a {@link VirtioRngDevice}.
     *
     * @param args {@code --socket-path PATH}, {@code --fd N} or {@code --print-capabilities}
     */
    // @start region="main"
    public static void main(String[] args) {
        System.exit(BackendProgram.main(args, "rng", List.of(), VirtioRngDevice::new));
    }
    // @end
}
