/**
 * The {@code migration} command-line tool (picocli): {@code inspect}, {@code verify}, {@code check} and {@code diff}.
 * {@link dev.outproc.examples.migration.MigrationCommand} is usable as a library class and as a subcommand of another
 * picocli command.
 */
package dev.outproc.examples.migration;
