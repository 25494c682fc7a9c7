/** The vfio-user client: negotiation, DMA, regions, IRQs, migration. */
package dev.outproc.vfio.client;
