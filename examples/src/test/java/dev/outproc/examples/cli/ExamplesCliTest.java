package dev.outproc.examples.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.examples.Main;
import dev.outproc.examples.testing.CommandRun;
import dev.outproc.vhost.frontend.VhostUserFrontend;
import dev.outproc.vhost.frontend.VirtioBlkDriver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The documented command lines of {@code outproc-examples.jar}, run in-process. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ExamplesCliTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"demo", "vhost-user-blk", "vhost-user-net", "vhost-user-rng", "vhost-user-probe", "vfio-user-sample", "vfio-user-virtio-blk", "vfio-user-client", "migration"})
    void everySubcommandShouldHaveHelp(String name) {
        CommandRun r = CommandRun.throughWriters(name, "--help");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("Usage: outproc-examples " + name), r.out());
    }

    /**
     * Help text is written in lines that fit the usage width, so picocli never breaks one in the middle of a
     * sentence; the subcommand list of {@code --help} shows each command's first line, a whole sentence.
     */
    @ParameterizedTest
    @ValueSource(strings = {"demo", "vhost-user-blk", "vhost-user-net", "vhost-user-rng", "vhost-user-probe", "vfio-user-sample", "vfio-user-virtio-blk", "vfio-user-client", "migration"})
    void helpShouldKeepEachDescriptionLineWholeAndStartWithASentence(String name) {
        String[] description = Main.commandLine().getSubcommands().get(name).getCommandSpec().usageMessage().description();
        CommandRun r = CommandRun.throughWriters(name, "--help");
        List<String> lines = r.out().lines().toList();
        for (String line : description) {
            if (!line.isEmpty()) {
                assertTrue(lines.contains(line), () -> "'" + line + "' wrapped in:\n" + r.out());
            }
        }
        assertTrue(description[0].endsWith("."), () -> "the command list shows a whole sentence: '" + description[0] + "'");
        String list = CommandRun.throughWriters("--help").out();
        assertTrue(list.contains(description[0].substring(0, Math.min(30, description[0].length()))), list);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vhost-user-blk", "vhost-user-net", "vhost-user-rng", "vfio-user-sample", "vfio-user-virtio-blk"})
    void aSocketPathThatCannotBeBoundShouldBeOneLineAndStatus1(String name) throws Exception {
        Path image = dir.resolve("img");
        java.nio.file.Files.write(image, new byte[1 << 20]);
        List<String> args = new java.util.ArrayList<>(List.of(name, "--socket-path", dir.resolve("missing/x.sock").toString()));
        if (name.endsWith("blk")) {
            args.addAll(List.of("--image", image.toString()));
        }
        // Some commands write to System.err themselves, others through picocli's writer: both count.
        PrintStream saved = System.err;
        ByteArrayOutputStream direct = new ByteArrayOutputStream();
        System.setErr(new PrintStream(direct, true, StandardCharsets.UTF_8));
        CommandRun r;
        try {
            r = CommandRun.throughWriters(args.toArray(String[]::new));
        } finally {
            System.setErr(saved);
        }
        String err = r.err() + direct.toString(StandardCharsets.UTF_8);
        assertEquals(1, r.status(), err);
        assertTrue(err.contains(dir.resolve("missing/x.sock").toString()) && err.contains("ENOENT"), err);
        assertTrue(!err.contains("\tat ") && !err.contains(".outproc-"), "no stack trace, no staging name: " + err);
    }

    /** The README's main job, as it runs there (smaller sizes keep the test short). */
    @Test
    void demoShouldRunEveryPartToTheEnd() {
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = Main.commandLine().execute("demo", "--memory-mib", "16", "--rounds", "200", "--requests", "200");
        } finally {
            System.setOut(saved);
        }
        String out = captured.toString(StandardCharsets.UTF_8);
        assertEquals(0, status, out);
        assertTrue(out.contains("200 kick/call round trips") && out.contains(", 0 mismatches"), out);
        assertTrue(out.contains("0 checksum mismatches, 0 error statuses"), out);
        assertTrue(out.contains("REFUSED, no state sent"), out);
        assertTrue(out.contains("blocks intact after two migrations"), out);
        assertTrue(out.contains("[4e58:0002] class 088000"), "the vfio-user card enumerated: " + out);
        assertTrue(out.contains("(0 wrong) and raised INTx (1 signal"), out);
        assertTrue(out.contains("handshake A -> C (BAR2 of 16 KiB): REFUSED, no state sent"), out);
        assertTrue(out.contains("the card's registers and BAR2 arrived intact"), out);
        assertTrue(out.contains("demo complete"), out);
    }

    @Test
    void topLevelHelpShouldListTheSubcommands() {
        CommandRun r = CommandRun.throughWriters("--help");
        assertEquals(0, r.status());
        for (String name : List.of("demo", "vhost-user-blk", "vhost-user-probe", "migration")) {
            assertTrue(r.out().contains(name), r.out());
        }
    }

    @Test
    void printCapabilitiesShouldBeTheConventionsJson() throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = Main.commandLine().execute("vhost-user-blk", "--print-capabilities");
        } finally {
            System.setOut(saved);
        }
        assertEquals(0, status);
        String type = null;
        List<String> features = new ArrayList<>();
        try (JsonParser p = new JsonFactory().createParser(captured.toByteArray())) {
            assertEquals(JsonToken.START_OBJECT, p.nextToken());
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                if (field.equals("type")) {
                    type = p.getText();
                } else if (field.equals("features")) {
                    while (p.nextToken() != JsonToken.END_ARRAY) {
                        features.add(p.getText());
                    }
                }
            }
        }
        assertEquals("block", type);
        assertTrue(features.contains("read-only") && features.contains("blk-file"), features::toString);
    }

    @Test
    void missingSocketOrImageShouldBeAUsageError() {
        CommandRun noSocket = CommandRun.throughWriters("vhost-user-blk", "--image", dir.resolve("x.img").toString());
        assertEquals(2, noSocket.status());
        assertTrue(noSocket.err().contains("--socket-path"), noSocket.err());
        CommandRun noImage = CommandRun.throughWriters("vhost-user-blk", "--socket-path", dir.resolve("s.sock").toString());
        assertEquals(2, noImage.status());
        assertTrue(noImage.err().contains("--image"), noImage.err());
        CommandRun both = CommandRun.throughWriters("vhost-user-blk", "--socket-path", "a", "--fd", "3", "--image", "x");
        assertEquals(2, both.status());
        CommandRun badQueues = CommandRun.throughWriters("vhost-user-blk", "--socket-path", "a", "--image", "x", "--queues", "0");
        assertEquals(2, badQueues.status());
    }

    @Test
    void missingImageFileShouldFailClearly() {
        CommandRun r = CommandRun.throughWriters("vhost-user-blk", "--socket-path", dir.resolve("s.sock").toString(), "--image", dir.resolve("none.img").toString());
        assertNotEquals(0, r.status());
        assertTrue(r.err().contains("image not found"), r.err());
    }

    @Test
    void connectedFdShouldBeServedUntilItCloses() throws Exception {
        Path image = dir.resolve("fd.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.allocate(1), (4 << 20) - 1);
        }
        MessageChannel.Pair pair = MessageChannel.pair();
        OwnedFd backendEnd = pair.peerFd();
        int fd = backendEnd.release(); // the command takes ownership of the number
        CompletableFuture<CommandRun> server = CompletableFuture.supplyAsync(
                () -> CommandRun.throughWriters("vhost-user-blk", "--fd", Integer.toString(fd), "--image", image.toString()),
                r -> Thread.ofPlatform().start(r));
        byte[] data = new byte[4096];
        new java.util.SplittableRandom(11).nextBytes(data);
        try (VirtioBlkDriver blk = VirtioBlkDriver.start(VhostUserFrontend.over(pair.channel()), 1, 4096, false)) {
            assertEquals(0, blk.write(16, data));
            byte[] back = new byte[4096];
            assertEquals(0, blk.read(16, back));
            assertArrayEquals(data, back);
        }
        CommandRun r = server.get(30, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.err());
    }

    @Test
    void probeShouldDescribeAndTestABackEnd() throws Exception {
        Path image = dir.resolve("probe.img");
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.allocate(1), (8 << 20) - 1);
        }
        Path socket = dir.resolve("probe.sock");
        Thread server = Thread.ofPlatform().daemon(true).start(
                () -> CommandRun.throughWriters("vhost-user-blk", "--socket-path", socket.toString(), "--image", image.toString()));
        for (int i = 0; i < 100 && !socket.toFile().exists(); i++) {
            Thread.sleep(50);
        }
        PrintStream saved = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        int status;
        try {
            status = Main.commandLine().execute("vhost-user-probe", "--socket-path", socket.toString(), "--blk-test", "20");
        } finally {
            System.setOut(saved);
        }
        String out = captured.toString(StandardCharsets.UTF_8);
        assertEquals(0, status, out);
        assertTrue(out.contains("VERSION_1"), out);
        assertTrue(out.contains("capacity 16384 sectors"), out);
        assertTrue(out.contains("20 write/read pairs of 4 KiB, 0 checksum mismatches"), out);
        assertTrue(server.isAlive(), "the back-end keeps serving");
    }
}
