package dev.outproc.examples.launcher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The main class of {@code outproc-examples.jar}, compiled for Java 17 so that it starts on an older
 * default {@code java}: on a JDK 22+ it runs the examples in this JVM; on an older one it looks for a
 * JDK 22+ ({@code JAVA_HOME}, then {@code /usr/lib/jvm}) and runs the jar there, passing the
 * arguments, standard streams and exit status through. An inherited {@code --fd} cannot be passed on that way,
 * so a command line with {@code --fd} is refused on an older {@code java}.
 */
public final class Launcher {
    private static final int REQUIRED_FEATURE = 22;
    private static final String MAIN = "dev.outproc.examples.Main";

    private Launcher() {
    }

    /**
     * Starts the examples.
     *
     * @param args the command line
     * @throws Exception when the examples cannot be started
     */
    public static void main(String[] args) throws Exception {
        if (Runtime.version().feature() >= REQUIRED_FEATURE) {
            Class.forName(MAIN).getMethod("main", String[].class).invoke(null, (Object) args);
            return;
        }
        for (String a : args) {
            if (a.equals("--fd") || a.startsWith("--fd=")) {
                // A JVM started with ProcessBuilder inherits only standard input, output and error: the number
                // would name one of that JVM's own files there, not the socket.
                System.err.println("outproc-examples: --fd needs the jar to run in this process, which needs Java "
                        + REQUIRED_FEATURE + " or newer as java (this is Java " + Runtime.version().feature()
                        + "): a JDK " + REQUIRED_FEATURE + "+ started for it would not inherit the fd. Run it with"
                        + " \"$(scripts/jdk22.sh)/bin/java\" -jar ... or a JDK " + REQUIRED_FEATURE + "+ on the PATH.");
                System.exit(2);
            }
        }
        Path java = findJava();
        if (java == null) {
            System.err.println("outproc-examples needs Java " + REQUIRED_FEATURE + " or newer; this is Java "
                    + Runtime.version() + " and no newer JDK was found in JAVA_HOME or /usr/lib/jvm.");
            System.exit(2);
        }
        Path jar = Paths.get(Launcher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> command = new ArrayList<>();
        command.add(java.toString());
        command.add("--enable-native-access=ALL-UNNAMED");
        command.add("-cp");
        command.add(jar.toString());
        command.add(MAIN);
        for (String a : args) {
            command.add(a);
        }
        Process child = new ProcessBuilder(command).inheritIO().start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (child.isAlive()) {
                child.destroy();
            }
        }));
        System.exit(child.waitFor());
    }

    private static Path findJava() throws IOException {
        String home = System.getenv("JAVA_HOME");
        if (home != null && feature(Paths.get(home)) >= REQUIRED_FEATURE) {
            return Paths.get(home, "bin", "java");
        }
        Path best = null;
        int bestFeature = 0;
        Path jvms = Paths.get("/usr/lib/jvm");
        if (Files.isDirectory(jvms)) {
            try (Stream<Path> dirs = Files.list(jvms)) {
                for (Path dir : (Iterable<Path>) dirs::iterator) {
                    int f = feature(dir);
                    if (f > bestFeature && Files.isExecutable(dir.resolve("bin/java"))) {
                        best = dir;
                        bestFeature = f;
                    }
                }
            }
        }
        return bestFeature >= REQUIRED_FEATURE ? best.resolve("bin/java") : null;
    }

    /** Reads {@code JAVA_VERSION="25.0.3"} from a JDK's {@code release} file; 0 when absent. */
    private static int feature(Path jdk) {
        Path release = jdk.resolve("release");
        if (!Files.isRegularFile(release)) {
            return 0;
        }
        try {
            for (String line : Files.readAllLines(release)) {
                if (line.startsWith("JAVA_VERSION=")) {
                    String v = line.substring("JAVA_VERSION=".length()).replace("\"", "");
                    String major = v.startsWith("1.") ? v.substring(2) : v;
                    int end = 0;
                    while (end < major.length() && Character.isDigit(major.charAt(end))) {
                        end++;
                    }
                    return end == 0 ? 0 : Integer.parseInt(major.substring(0, end));
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }
}
