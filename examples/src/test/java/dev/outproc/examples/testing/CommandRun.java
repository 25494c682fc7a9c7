package dev.outproc.examples.testing;

import dev.outproc.examples.Main;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/**
 * One run of the examples' command line in this JVM: its exit status and what it wrote, both through picocli's
 * writers and to {@code System.out}/{@code System.err} directly (both are captured, as a terminal would show them).
 *
 * @param status the exit status
 * @param out standard output
 * @param err standard error
 */
public record CommandRun(int status, String out, String err) {
    /**
     * Runs the command line; runs are serialised, since standard output and error are process-wide.
     *
     * @param args the arguments, as after {@code java -jar outproc-examples.jar}
     * @return the outcome
     */
    public static CommandRun of(String... args) {
        synchronized (CommandRun.class) {
            PrintStream savedOut = System.out;
            PrintStream savedErr = System.err;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int status;
            try {
                status = Main.commandLine().execute(args);
            } finally {
                System.out.flush();
                System.err.flush();
                System.setOut(savedOut);
                System.setErr(savedErr);
            }
            return new CommandRun(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        }
    }

    /**
     * Runs the command line capturing picocli's writers only, so that runs may overlap (a back-end serving in
     * the background while another command drives it); what a command prints to {@code System.out} or
     * {@code System.err} itself is not captured.
     *
     * @param args the arguments, as after {@code java -jar outproc-examples.jar}
     * @return the outcome
     */
    public static CommandRun throughWriters(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = Main.commandLine().setOut(new PrintWriter(out)).setErr(new PrintWriter(err)).execute(args);
        return new CommandRun(status, out.toString(), err.toString());
    }
}
