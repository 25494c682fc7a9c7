/**
 * What a vfio-user server program does around its device: take {@code --socket-path} or {@code --fd}, serve
 * client after client, and stop cleanly on SIGTERM or SIGINT ({@link dev.outproc.vfio.program.ServerProgram}).
 * Plain Java: usable with or without a command-line library.
 */
package dev.outproc.vfio.program;
