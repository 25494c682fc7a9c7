/** The vfio-user server framework: sessions, DMA space, interrupts, migration v2 state machine. */
package dev.outproc.vfio.server;
