package dev.outproc.examples;

import dev.outproc.examples.blk.VhostUserBlkCommand;
import dev.outproc.examples.demo.DemoCommand;
import dev.outproc.examples.migration.MigrationCommand;
import dev.outproc.examples.net.VhostUserNetCommand;
import dev.outproc.examples.probe.VhostUserProbeCommand;
import dev.outproc.examples.rng.VhostUserRngCommand;
import dev.outproc.examples.vfio.VfioUserClientCommand;
import dev.outproc.examples.vfio.VfioUserSampleCommand;
import dev.outproc.examples.vfio.VfioUserVirtioBlkCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The single entry point of {@code outproc-examples.jar}: devices, tools and the demo as subcommands.
 * Run {@code java -jar examples/target/outproc-examples.jar --help}.
 */
@Command(name = "outproc-examples",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Devices, tools and the demo built on the outproc library.",
        subcommands = {
                DemoCommand.class,
                VhostUserBlkCommand.class,
                VhostUserNetCommand.class,
                VhostUserRngCommand.class,
                VhostUserProbeCommand.class,
                VfioUserSampleCommand.class,
                VfioUserVirtioBlkCommand.class,
                VfioUserClientCommand.class,
                MigrationCommand.class,
                CommandLine.HelpCommand.class
        })
public final class Main implements Runnable {
    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /**
     * Runs a subcommand and exits with its status.
     *
     * @param args the command line
     */
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** {@return the configured command line, for tests and for embedding} */
    public static CommandLine commandLine() {
        return new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true)
                .setExecutionExceptionHandler(Main::reportFailure);
    }

    /**
     * What a subcommand could not do because of its environment (a socket path that cannot be bound, a file
     * that cannot be read, a peer that went away) is one line on standard error and exit status 1; anything
     * else is a bug and keeps its stack trace.
     */
    private static int reportFailure(Exception e, CommandLine command, CommandLine.ParseResult parsed) throws Exception {
        if (e instanceof java.io.IOException) {
            command.getErr().println(command.getCommandName() + ": " + e.getMessage());
            return 1;
        }
        throw e;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** Reports the version from the jar's manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"outproc-examples " + (v == null ? "development build" : v)};
        }
    }
}
