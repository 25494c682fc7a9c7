package dev.outproc.examples.testing;

import dev.outproc.examples.Main;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Subcommands of the examples jar started as processes of their own (this JVM's java and class path), each
 * serving on a socket; {@link #close()} stops them the way a user does, SIGTERM first, SIGKILL after 30 s.
 */
public final class SubcommandProcesses implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();

    /**
     * Starts a subcommand and waits (up to 30 s) until its socket file exists, or the process ends.
     *
     * @param socket the socket the command listens on (its {@code --socket-path}, given in {@code args})
     * @param stderr file that receives the process's standard error (its standard output is discarded)
     * @param args the subcommand and its arguments
     * @return the process
     * @throws IOException when the process cannot start
     * @throws InterruptedException when interrupted while waiting
     */
    public Process start(Path socket, Path stderr, String... args) throws IOException, InterruptedException {
        Process process = launch(stderr, args);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket) && process.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        return process;
    }

    /**
     * Starts a subcommand without waiting for anything.
     *
     * @param stderr file that receives the process's standard error (its standard output is discarded)
     * @param args the subcommand and its arguments
     * @return the process
     * @throws IOException when the process cannot start
     */
    public Process launch(Path stderr, String... args) throws IOException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectError(stderr.toFile())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        processes.add(process);
        return process;
    }

    /**
     * {@return a file's text, or a note that it cannot be read (for assertion messages)}
     *
     * @param file the file, usually a process's standard error
     */
    public static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(cannot read " + file + ": " + e.getMessage() + ")";
        }
    }

    /** Stops every process started here: SIGTERM, then SIGKILL for one still running after 30 s. */
    @Override
    public void close() throws InterruptedException {
        for (Process p : processes) {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
        processes.clear();
    }
}
