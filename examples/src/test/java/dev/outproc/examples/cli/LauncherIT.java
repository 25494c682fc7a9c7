package dev.outproc.examples.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code outproc-examples.jar} on a JDK older than 22 (the default {@code java} of Debian 12): it starts the command
 * on a JDK 22+ of its own and passes the exit status through, and it refuses {@code --fd}, which that second JVM
 * could not inherit. Skipped where no older JDK is installed under {@code /usr/lib/jvm}.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LauncherIT {
    private static final Path JAR = Path.of("target/outproc-examples.jar");

    private static Optional<Path> olderJava() throws IOException {
        Path jvms = Path.of("/usr/lib/jvm");
        if (!Files.isDirectory(jvms)) {
            return Optional.empty();
        }
        try (Stream<Path> dirs = Files.list(jvms)) {
            return dirs.filter(d -> Files.isExecutable(d.resolve("bin/java")))
                    .filter(d -> {
                        try {
                            return Files.readAllLines(d.resolve("release")).stream()
                                    .anyMatch(l -> l.startsWith("JAVA_VERSION=\"17") || l.startsWith("JAVA_VERSION=\"21")
                                            || l.startsWith("JAVA_VERSION=\"11"));
                        } catch (IOException e) {
                            return false;
                        }
                    })
                    .map(d -> d.resolve("bin/java")).findFirst();
        }
    }

    private record Run(int status, String out, String err) {
    }

    private static Run run(Path java, String... args) throws Exception {
        String[] command = Stream.concat(Stream.of(java.toString(), "-jar", JAR.toString()), Stream.of(args)).toArray(String[]::new);
        Process p = new ProcessBuilder(command).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    @Test
    void anOlderJavaShouldRunTheCommandOnAJdk22AndRefuseAnInheritedFd() throws Exception {
        Optional<Path> java = olderJava();
        assumeTrue(java.isPresent(), "no JDK older than 22 under /usr/lib/jvm");
        Run help = run(java.get(), "vfio-user-sample", "--help");
        assertEquals(0, help.status(), help.err());
        assertTrue(help.out().contains("Usage: outproc-examples vfio-user-sample"), help.out());

        Run missing = run(java.get(), "vfio-user-client", "--socket-path", "/nonexistent/outproc.sock", "info");
        assertEquals(1, missing.status(), "the exit status comes through: " + missing.err());

        for (String[] args : new String[][] {{"vfio-user-sample", "--fd", "3"}, {"vhost-user-rng", "--fd=3"}}) {
            Run fd = run(java.get(), args);
            assertEquals(2, fd.status(), fd.err());
            assertEquals(1, fd.err().strip().lines().count(), fd.err());
            assertTrue(fd.err().startsWith("outproc-examples: --fd needs the jar to run in this process"), fd.err());
        }
    }
}
