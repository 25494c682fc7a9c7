package dev.outproc.vfio.message;

import dev.outproc.core.fd.Errno;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The capability chain of a region-info reply (vfio-user.rst, "VFIO region capabilities"; Linux
 * {@code struct vfio_info_cap_header}): each capability starts with an {@link InfoCapHeader} whose
 * {@code next} is counted from the start of the {@link RegionInfo} structure. Reading it is bounded: every
 * capability must lie inside the reply, {@code next} must move forward (so a chain cannot loop), and at
 * most {@link #MAX_CAPABILITIES} are read.
 */
public final class RegionCapabilities {
    /** The most capabilities read from one chain. */
    public static final int MAX_CAPABILITIES = 16;
    /** The most sparse-mmap areas accepted in one capability. */
    public static final int MAX_SPARSE_AREAS = 1024;

    private RegionCapabilities() {
    }

    /**
     * A sparse-mmap area.
     *
     * @param offset offset in the region
     * @param size size in bytes
     */
    public record SparseArea(long offset, long size) {
    }

    /**
     * What a chain held.
     *
     * @param sparseAreas the sparse-mmap areas, or {@code null} when the chain has no SPARSE_MMAP capability
     * @param type the TYPE capability's type, or -1
     * @param subtype the TYPE capability's subtype, or -1
     * @param unknown how many capabilities of other ids were skipped
     */
    public record Chain(List<SparseArea> sparseAreas, long type, long subtype, int unknown) {
        /** A chain with nothing in it. */
        public static final Chain EMPTY = new Chain(null, -1, -1, 0);
    }

    /**
     * Reads the chain of a region-info reply.
     *
     * @param segment the buffer
     * @param infoOffset where the {@link RegionInfo} starts
     * @param infoLength the bytes of the reply payload from there on
     * @return the chain
     * @throws VfioUserProtocolException (EINVAL) when a capability lies outside the reply, the chain does not
     *         move forward, or a capability is malformed
     */
    public static Chain read(MemorySegment segment, long infoOffset, long infoLength) throws VfioUserProtocolException {
        RegionInfo.Decoder info = new RegionInfo.Decoder().wrap(segment, infoOffset);
        if ((info.flags() & RegionInfo.FLAG_CAPS) == 0 || info.capOffset() == 0) {
            return Chain.EMPTY;
        }
        InfoCapHeader.Decoder header = new InfoCapHeader.Decoder();
        List<SparseArea> areas = null;
        long type = -1;
        long subtype = -1;
        int unknown = 0;
        long at = info.capOffset();
        long previous = RegionInfo.ENCODED_LENGTH - 1;
        for (int n = 0; at != 0; n++) {
            if (n == MAX_CAPABILITIES) {
                throw invalid("region capability chain longer than " + MAX_CAPABILITIES);
            }
            if (at <= previous || at + InfoCapHeader.ENCODED_LENGTH > infoLength) {
                throw invalid("region capability at " + at + " outside [" + (previous + 1) + ", " + infoLength + ")");
            }
            header.wrap(segment, infoOffset + at);
            long body = at + InfoCapHeader.ENCODED_LENGTH;
            switch (header.id()) {
                case InfoCapHeader.CAP_SPARSE_MMAP -> {
                    if (body + SparseMmapCap.ENCODED_LENGTH > infoLength) {
                        throw invalid("sparse mmap capability truncated at " + at);
                    }
                    SparseMmapCap.Decoder cap = new SparseMmapCap.Decoder().wrap(segment, infoOffset + body);
                    long count = cap.nrAreas();
                    if (count > MAX_SPARSE_AREAS
                            || body + SparseMmapCap.ENCODED_LENGTH + count * SparseMmapArea.ENCODED_LENGTH > infoLength) {
                        throw invalid("sparse mmap capability with " + count + " areas does not fit in " + infoLength);
                    }
                    areas = new ArrayList<>((int) count);
                    SparseMmapArea.Decoder area = new SparseMmapArea.Decoder();
                    for (int i = 0; i < count; i++) {
                        area.wrap(segment, cap.dataOffset() + (long) i * SparseMmapArea.ENCODED_LENGTH);
                        areas.add(new SparseArea(area.offset(), area.size()));
                    }
                }
                case InfoCapHeader.CAP_TYPE -> {
                    if (body + RegionTypeCap.ENCODED_LENGTH > infoLength) {
                        throw invalid("type capability truncated at " + at);
                    }
                    RegionTypeCap.Decoder cap = new RegionTypeCap.Decoder().wrap(segment, infoOffset + body);
                    type = cap.type();
                    subtype = cap.subtype();
                }
                default -> unknown++;
            }
            previous = at;
            at = header.next();
        }
        return new Chain(areas == null ? null : List.copyOf(areas), type, subtype, unknown);
    }

    /**
     * The bytes a SPARSE_MMAP capability takes.
     *
     * @param areas how many areas
     * @return header, body and areas
     */
    public static int sparseMmapLength(int areas) {
        return InfoCapHeader.ENCODED_LENGTH + SparseMmapCap.ENCODED_LENGTH + areas * SparseMmapArea.ENCODED_LENGTH;
    }

    /**
     * Writes a SPARSE_MMAP capability.
     *
     * @param segment the buffer
     * @param at where the capability starts
     * @param next the chain's next offset (from the region-info start), 0 for the last
     * @param areas the areas
     */
    public static void writeSparseMmap(MemorySegment segment, long at, long next, List<SparseArea> areas) {
        new InfoCapHeader.Encoder().wrap(segment, at).id(InfoCapHeader.CAP_SPARSE_MMAP).version(SparseMmapCap.VERSION).next(next);
        SparseMmapCap.Encoder cap = new SparseMmapCap.Encoder().wrap(segment, at + InfoCapHeader.ENCODED_LENGTH)
                .nrAreas(areas.size()).reserved(0);
        SparseMmapArea.Encoder area = new SparseMmapArea.Encoder();
        for (int i = 0; i < areas.size(); i++) {
            area.wrap(segment, cap.dataOffset() + (long) i * SparseMmapArea.ENCODED_LENGTH)
                    .offset(areas.get(i).offset()).size(areas.get(i).size());
        }
    }

    /**
     * Writes a TYPE capability.
     *
     * @param segment the buffer
     * @param at where the capability starts
     * @param next the chain's next offset, 0 for the last
     * @param type the region type
     * @param subtype the region subtype
     */
    public static void writeType(MemorySegment segment, long at, long next, long type, long subtype) {
        new InfoCapHeader.Encoder().wrap(segment, at).id(InfoCapHeader.CAP_TYPE).version(RegionTypeCap.VERSION).next(next);
        new RegionTypeCap.Encoder().wrap(segment, at + InfoCapHeader.ENCODED_LENGTH).type(type).subtype(subtype);
    }

    private static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }
}
