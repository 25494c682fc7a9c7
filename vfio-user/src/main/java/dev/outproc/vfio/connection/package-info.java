/** vfio-user message framing over a Unix socket with fd passing, shared by the server and the client. */
package dev.outproc.vfio.connection;
