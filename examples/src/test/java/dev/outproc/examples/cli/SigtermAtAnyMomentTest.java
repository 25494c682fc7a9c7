package dev.outproc.examples.cli;

import dev.outproc.examples.testing.SubcommandProcesses;
import dev.outproc.migration.testing.GoldenCorpus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static dev.outproc.examples.testing.SubcommandProcesses.read;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every serving command that creates socket files removes all of them on SIGTERM, whatever moment the signal picks:
 * while the JVM starts, while a socket is being bound, between one socket and the next, or while serving. The
 * moments are seeded random delays after the start (the seed is printed; {@code -Dsigterm.seed=N} repeats a run).
 */
class SigtermAtAnyMomentTest {
    private static final long SEED = Long.getLong("sigterm.seed", System.nanoTime());
    private static final int RUNS_PER_COMMAND = 3;
    private static final int LATEST_SIGNAL_MS = 1500;

    @TempDir
    Path dir;

    private final SubcommandProcesses processes = new SubcommandProcesses();

    @AfterEach
    void stop() throws InterruptedException {
        processes.close();
    }

    static Stream<Arguments> moments() {
        System.out.println("SigtermAtAnyMomentTest seed " + SEED + " (-Dsigterm.seed=" + SEED + " repeats it)");
        Random random = new Random(SEED);
        List<Arguments> runs = new ArrayList<>();
        for (String command : List.of("vfio-user-virtio-blk", "vfio-user-sample", "vhost-user-blk", "migration serve")) {
            for (int i = 0; i < RUNS_PER_COMMAND; i++) {
                runs.add(Arguments.of(command, random.nextInt(LATEST_SIGNAL_MS + 1)));
            }
        }
        return runs.stream();
    }

    @ParameterizedTest(name = "{0}, SIGTERM after {1} ms")
    @MethodSource("moments")
    void sigtermShouldLeaveNoSocketFileBehind(String command, int delayMillis) throws Exception {
        Path socket = dir.resolve("device.sock");
        Path handshake = dir.resolve("device.mig");
        Path log = dir.resolve("stderr.log");
        List<String> args = new ArrayList<>(List.of(command.split(" ")));
        switch (command) {
            case "vfio-user-virtio-blk", "vhost-user-blk" -> args.addAll(List.of("--socket-path", socket.toString(),
                    "--image", image().toString(), "--migration-socket", handshake.toString()));
            case "vfio-user-sample" -> args.addAll(List.of("--socket-path", socket.toString(),
                    "--migration-socket", handshake.toString()));
            case "migration serve" -> args.addAll(List.of("--migration-socket=" + handshake, descriptor().toString()));
            default -> throw new IllegalArgumentException(command);
        }
        Process p = processes.launch(log, args.toArray(String[]::new));
        Thread.sleep(delayMillis);
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), () -> command + " stops on SIGTERM; stderr: " + read(log));
        assertFalse(Files.exists(socket), () -> "the device socket is removed; " + afterwards(p, log));
        assertFalse(Files.exists(handshake), () -> "the migration socket is removed; " + afterwards(p, log));
    }

    /** What a failure needs to be understood: the exit status, the files left and the program's stderr. */
    private String afterwards(Process p, Path log) {
        String left;
        try (Stream<Path> files = Files.list(dir)) {
            left = files.map(f -> f.getFileName().toString()).sorted().toList().toString();
        } catch (IOException e) {
            left = "(" + e + ")";
        }
        return "exit status " + p.exitValue() + ", files " + left + ", stderr: " + read(log);
    }

    private Path image() throws IOException {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        return image;
    }

    private Path descriptor() throws IOException {
        Path file = dir.resolve("blk-dest-memory.json");
        try (InputStream in = GoldenCorpus.class.getResourceAsStream("/descriptors/blk-dest-memory.json")) {
            Files.write(file, in.readAllBytes());
        }
        return file;
    }
}
