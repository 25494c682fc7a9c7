/**
 * The vhost-user back-end program conventions (vhost-user.rst "Backend program conventions") for a
 * device author's {@code main}: {@code --socket-path}/{@code --fd}/{@code --print-capabilities} parsing
 * ({@link dev.outproc.vhost.program.BackendArguments}), serving with a clean stop on SIGTERM, and the
 * capabilities JSON ({@link dev.outproc.vhost.program.BackendProgram}). Plain Java: usable with or
 * without a command-line library.
 */
package dev.outproc.vhost.program;
