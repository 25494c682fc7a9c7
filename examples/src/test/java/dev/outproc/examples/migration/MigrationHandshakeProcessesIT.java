package dev.outproc.examples.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.outproc.migration.testing.GoldenCorpus;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The handshake between processes, run with the documented command lines of {@code outproc-examples.jar} only: two
 * endpoints ({@code migration serve}), the relay ({@code migration relay}) over Unix sockets and over a byte pipe to
 * a command ({@code exec:... migration connect}, what ssh does between hosts).
 */
@Timeout(180)
class MigrationHandshakeProcessesIT {
    private static final Path JAR = Path.of("target/outproc-examples.jar");
    private static final Path JAVA = Path.of(System.getProperty("java.home"), "bin", "java");
    private final List<Process> started = new ArrayList<>();

    @TempDir
    Path dir;

    @AfterEach
    void stop() {
        for (Process p : started) {
            p.destroy();
        }
    }

    private Path descriptor(String name) throws IOException {
        try (InputStream in = GoldenCorpus.class.getResourceAsStream("/descriptors/" + name)) {
            Path f = dir.resolve(name);
            Files.write(f, in.readAllBytes());
            return f;
        }
    }

    private static List<String> jar(String... args) {
        List<String> c = new ArrayList<>(List.of(JAVA.toString(), "--enable-native-access=ALL-UNNAMED", "-jar", JAR.toString()));
        c.addAll(List.of(args));
        return c;
    }

    /** Starts {@code migration serve} and waits until it listens. */
    private BufferedReader serve(String descriptor, Path socket) throws IOException {
        Process p = new ProcessBuilder(jar("migration", "serve", descriptor(descriptor).toString(), "--migration-socket", socket.toString()))
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        started.add(p);
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String first = out.readLine();
        assertTrue(first != null && first.startsWith("serving the migration handshake"), String.valueOf(first));
        return out;
    }

    private record Result(int status, String out) {}

    private static Result relay(String source, String destination) throws Exception {
        Process p = new ProcessBuilder(jar("migration", "relay", "--source", source, "--destination", destination))
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return new Result(p.exitValue(), out);
    }

    private static String hash(String json) {
        Matcher m = Pattern.compile("\"handshakeHash\":\"([0-9a-f]{64})\"").matcher(json);
        assertTrue(m.find(), json);
        return m.group(1);
    }

    @Test
    void aCompatiblePairShouldAgreeThroughTheRelayCommand() throws Exception {
        BufferedReader src = serve("blk-source.json", dir.resolve("src.sock"));
        BufferedReader dst = serve("blk-dest-memory.json", dir.resolve("dst.sock"));
        Result r = relay("unix:" + dir.resolve("src.sock"), "unix:" + dir.resolve("dst.sock"));
        assertEquals(0, r.status(), r.out());
        assertTrue(r.out().contains("\"agreed\":true") && r.out().contains("\"formatVersion\":2"), r.out());
        String s = src.readLine();
        String d = dst.readLine();
        assertTrue(s.contains("\"role\":\"source\""), s);
        assertTrue(d.contains("\"role\":\"destination\""), d);
        assertEquals(hash(r.out()), hash(s));
        assertEquals(hash(r.out()), hash(d));
    }

    @Test
    void anIncompatiblePairShouldBeRefusedWithReasons() throws Exception {
        serve("blk-source.json", dir.resolve("src.sock"));
        serve("blk-dest-incompatible.json", dir.resolve("dst.sock"));
        Result r = relay("unix:" + dir.resolve("src.sock"), "unix:" + dir.resolve("dst.sock"));
        assertEquals(MigrationCommand.EXIT_FAILED, r.status(), r.out());
        assertTrue(r.out().contains("\"agreed\":false") && r.out().contains("\"code\":\"PARAMETER_NOT_ALLOWED\"")
                && r.out().contains("\"code\":\"NO_COMMON_VERSION\""), r.out());
    }

    @Test
    void theHandshakeShouldCrossAPipeToAnotherCommandAsWithSsh() throws Exception {
        BufferedReader src = serve("blk-source.json", dir.resolve("src.sock"));
        serve("blk-dest-memory.json", dir.resolve("dst.sock"));
        String remote = String.join(" ", jar("migration", "connect", dir.resolve("dst.sock").toString()));
        Result r = relay("unix:" + dir.resolve("src.sock"), "exec:" + remote);
        assertEquals(0, r.status(), r.out());
        assertEquals(hash(r.out()), hash(src.readLine()));
    }
}
