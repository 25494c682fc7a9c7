/** Guest memory mapped zero-copy as {@link java.lang.foreign.MemorySegment}s, memfds and the dirty-page log. */
package dev.outproc.core.memory;
