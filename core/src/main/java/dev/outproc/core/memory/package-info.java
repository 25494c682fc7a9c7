/**
 * Guest memory mapped zero-copy as {@link java.lang.foreign.MemorySegment}s, memfds and the dirty-page log.
 *
 * <p>{@link dev.outproc.core.memory.Layouts} declares the little-endian and native-order value layouts
 * once for every module. {@link dev.outproc.core.memory.MemFd} checks a peer's memory fd before it is
 * mapped: {@code requireCovers} refuses a file too small for the mapping and {@code sealAgainstShrink}
 * adds {@code F_SEAL_SHRINK} where the file allows it, because a file that shrinks under a mapping turns
 * the next access into {@code SIGBUS}, which aborts the JVM.
 */
package dev.outproc.core.memory;
