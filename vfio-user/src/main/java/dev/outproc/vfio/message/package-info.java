/**
 * vfio-user wire formats: the 16-byte header, one zero-copy flyweight per payload structure (named as in
 * vfio-user.rst and linux/vfio.h), the capabilities JSON of VERSION, region capability chains, and the
 * syntax layer ({@link dev.outproc.vfio.message.MessageValidator}) that every received message passes.
 */
package dev.outproc.vfio.message;
