package dev.outproc.core.fd;

import dev.outproc.core.event.EventFd;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A JVM without the native-access grant gets one message that names the flag to add. */
class NativeAccessTest {
    /** Run in the child JVM. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            try (EventFd e = EventFd.create()) {
                System.out.println("created " + e);
            }
        }
    }

    private static Process start(List<String> jvmFlags) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new java.util.ArrayList<>();
        command.add(java);
        command.addAll(jvmFlags);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Child.class.getName());
        return new ProcessBuilder(command).redirectErrorStream(true).start();
    }

    @Test
    void missingGrantShouldNameTheFlag() throws Exception {
        Process p = start(List.of("--illegal-native-access=deny"));
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertNotEquals(0, p.exitValue(), output);
        assertTrue(output.contains("--enable-native-access=ALL-UNNAMED"), output);
        assertTrue(output.contains("outproc needs native access"), output);
    }

    @Test
    void grantedAccessShouldWorkSilently() throws Exception {
        Process p = start(List.of("--enable-native-access=ALL-UNNAMED"));
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("created EventFd"), output);
        assertTrue(!output.contains("outproc needs native access"), output);
    }
}
