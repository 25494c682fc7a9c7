package dev.outproc.vfio.pci;

import dev.outproc.vfio.message.VfioUserProtocolException;

import java.lang.foreign.MemorySegment;

/**
 * The device side of a BAR reached through REGION_READ/WRITE: register files with side effects. The
 * server has checked the bounds; accesses arrive on the connection thread.
 */
public interface BarHandler {
    /**
     * A read.
     *
     * @param offset the offset in the BAR
     * @param destination where the bytes go (its size is the access size)
     * @throws VfioUserProtocolException to refuse the access with an errno
     */
    void read(long offset, MemorySegment destination) throws VfioUserProtocolException;

    /**
     * A write.
     *
     * @param offset the offset in the BAR
     * @param source the bytes
     * @throws VfioUserProtocolException to refuse the access with an errno
     */
    void write(long offset, MemorySegment source) throws VfioUserProtocolException;
}
