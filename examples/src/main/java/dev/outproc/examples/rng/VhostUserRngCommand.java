package dev.outproc.examples.rng;

import dev.outproc.examples.cli.BackendOptions;
import dev.outproc.vhost.backend.VhostUserServer;
import dev.outproc.vhost.program.BackendProgram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code vhost-user-rng}: a virtio entropy back-end filling the guest's buffers from SecureRandom. */
@Command(name = "vhost-user-rng", mixinStandardHelpOptions = true,
        description = {
                "A vhost-user-rng back-end: a virtio entropy device.",
                "It fills the guest's buffers from SecureRandom and serves front-end after",
                "front-end until killed.",
                "",
                "Example:",
                "  java -jar outproc-examples.jar vhost-user-rng --socket-path /tmp/vur.sock",
                "  qemu-system-x86_64 ... \\",
                "      -object memory-backend-memfd,id=mem,size=256M,share=on \\",
                "      -numa node,memdev=mem \\",
                "      -chardev socket,id=r0,path=/tmp/vur.sock \\",
                "      -device vhost-user-rng-pci,chardev=r0"
        })
public final class VhostUserRngCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    BackendOptions backend;

    @Override
    public Integer call() throws IOException {
        if (backend.printCapabilities()) {
            BackendProgram.printCapabilities(System.out, "rng", List.of());
            return 0;
        }
        String missing = backend.missingSocket();
        if (missing != null) {
            throw new ParameterException(spec.commandLine(), missing);
        }
        VirtioRngDevice device = new VirtioRngDevice();
        try (VhostUserServer server = backend.start(device)) {
            System.err.println("vhost-user-rng: serving on " + backend.where());
            BackendProgram.serve(server);
        }
        System.err.println("vhost-user-rng: " + device.bytesServed() + " bytes served");
        return 0;
    }
}
