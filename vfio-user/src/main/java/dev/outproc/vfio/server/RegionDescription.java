package dev.outproc.vfio.server;

import dev.outproc.core.fd.OwnedFd;
import dev.outproc.vfio.message.RegionCapabilities.SparseArea;

import java.util.List;

/**
 * What {@code VFIO_USER_DEVICE_GET_REGION_INFO} reports about one region: its size and access flags
 * ({@code VFIO_REGION_INFO_FLAG_READ/WRITE}), and when the region (or parts of it) can be mmapped, the fd,
 * the mmap offset in it and the sparse areas.
 *
 * @param sizeBytes the region size (0: the region does not exist)
 * @param flags READ and WRITE bits of {@link dev.outproc.vfio.message.RegionInfo}
 * @param mmapFd the fd the client may mmap, or {@code null}; stays owned by the device (a duplicate is sent)
 * @param mmapOffset the mmap offset of the region in {@code mmapFd}
 * @param sparseAreas the mmappable parts, or {@code null} when the whole region is mmappable
 * @param type the TYPE capability's type, or -1 for none
 * @param subtype the TYPE capability's subtype
 */
public record RegionDescription(long sizeBytes, int flags, OwnedFd mmapFd, long mmapOffset, List<SparseArea> sparseAreas,
                                long type, long subtype) {
    /** A region the device does not have. */
    public static final RegionDescription ABSENT = new RegionDescription(0, 0, null, 0, null, -1, 0);

    /**
     * A region reached only through REGION_READ/WRITE.
     *
     * @param sizeBytes the size
     * @param flags READ and WRITE bits
     * @return the description
     */
    public static RegionDescription ofMessages(long sizeBytes, int flags) {
        return new RegionDescription(sizeBytes, flags, null, 0, null, -1, 0);
    }
}
