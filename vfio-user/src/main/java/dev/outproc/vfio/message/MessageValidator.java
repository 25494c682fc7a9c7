package dev.outproc.vfio.message;

import dev.outproc.core.fd.Errno;

import java.lang.foreign.MemorySegment;

/**
 * The syntax layer of vfio-user (the first of the two validation layers): what can be checked from a
 * message's bytes and fd count alone, before any handler sees it. Semantic checks (negotiation state,
 * region bounds, overlapping mappings) belong to the server and client.
 *
 * <p>Every failure is a {@link VfioUserProtocolException} carrying the errno of the error reply and the
 * offending values. Header failures that break framing (a size smaller than the header or beyond the cap)
 * cannot be answered sensibly; the connection answers and closes.
 */
public final class MessageValidator {
    /** The most DMA logging ranges accepted in one DMA_LOGGING_START. */
    public static final int MAX_DMA_LOGGING_RANGES = 1024;

    private MessageValidator() {
    }

    /**
     * Checks a header as read from the socket, before the rest of the message is read.
     *
     * @param segment the buffer
     * @param offset where the header starts
     * @param maxMessageBytes the largest message this side accepts
     * @throws VfioUserProtocolException when the size is below 16 or above the cap (EINVAL, E2BIG), reserved
     *         flag bits are set or the type is neither command nor reply (EINVAL)
     */
    public static void checkHeader(MemorySegment segment, long offset, long maxMessageBytes) throws VfioUserProtocolException {
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(segment, offset);
        long size = h.size();
        if (size < VfioUserHeader.ENCODED_LENGTH) {
            throw new VfioUserProtocolException(Errno.EINVAL, "message size " + size + " is smaller than the 16-byte header"
                    + ", command=" + h.command());
        }
        if (size > maxMessageBytes) {
            throw new VfioUserProtocolException(Errno.E2BIG, "message size " + size + " exceeds " + maxMessageBytes
                    + ", command=" + h.command());
        }
        long flags = h.flags();
        if ((flags & ~(long) VfioUserHeader.KNOWN_FLAGS) != 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "reserved header flag bits set, flags=0x" + Long.toHexString(flags));
        }
        long type = flags & VfioUserHeader.TYPE_MASK;
        if (type != VfioUserHeader.TYPE_COMMAND && type != VfioUserHeader.TYPE_REPLY) {
            throw new VfioUserProtocolException(Errno.EINVAL, "message type " + type + " is neither command (0) nor reply (1)");
        }
    }

    /**
     * Checks a whole command message received by the side that the command's direction names.
     *
     * @param segment the buffer holding the message
     * @param offset where the header starts
     * @param fds how many fds arrived with it
     * @param direction which commands this side receives
     * @param maxDataXferSize the largest data transfer this side accepts
     * @param maxMsgFds the most fds this side accepts in one message
     * @return the command
     * @throws VfioUserProtocolException with ENOSYS for an unknown number, ENOTSUP for the retired number 14,
     *         EINVAL for a command sent the wrong way, a wrong payload size, unknown flag bits or fds where
     *         none belong, E2BIG for a transfer over {@code maxDataXferSize}
     */
    public static VfioUserCommand checkCommand(MemorySegment segment, long offset, int fds, VfioUserCommand.Direction direction,
                                               long maxDataXferSize, int maxMsgFds) throws VfioUserProtocolException {
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(segment, offset);
        VfioUserCommand command = VfioUserCommand.of(h.command());
        if (command == null) {
            throw new VfioUserProtocolException(Errno.ENOSYS, "unknown command " + h.command());
        }
        if (command.isRetired()) {
            throw new VfioUserProtocolException(Errno.ENOTSUP,
                    "command 14 (VFIO_USER_DIRTY_PAGES) is retired; use DEVICE_FEATURE DMA_LOGGING_*");
        }
        if (command.direction() != direction) {
            throw new VfioUserProtocolException(Errno.EINVAL, command + " is not sent in this direction");
        }
        if (h.isError()) {
            throw new VfioUserProtocolException(Errno.EINVAL, "Error flag set in a command, command=" + command);
        }
        if (fds > maxMsgFds) {
            throw new VfioUserProtocolException(Errno.EINVAL, command + " carried " + fds + " fds, at most " + maxMsgFds);
        }
        long payload = h.size() - VfioUserHeader.ENCODED_LENGTH;
        long p = offset + VfioUserHeader.ENCODED_LENGTH;
        switch (command) {
            case VERSION -> {
                atLeast(command, payload, Version.ENCODED_LENGTH);
                noFds(command, fds);
            }
            case DMA_MAP -> {
                exactly(command, payload, DmaMap.ENCODED_LENGTH);
                if (fds > 1) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_MAP carried " + fds + " fds, at most 1");
                }
                DmaMap.Decoder m = new DmaMap.Decoder().wrap(segment, p);
                knownFlags(command, m.flags(), DmaMap.KNOWN_FLAGS);
                if (m.size() == 0) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_MAP of size 0, address=0x" + Long.toHexString(m.address()));
                }
                checkedEnd(command, m.address(), m.size());
            }
            case DMA_UNMAP -> {
                exactly(command, payload, DmaUnmap.ENCODED_LENGTH);
                noFds(command, fds);
                DmaUnmap.Decoder u = new DmaUnmap.Decoder().wrap(segment, p);
                knownFlags(command, u.flags(), DmaUnmap.FLAG_ALL);
                if ((u.flags() & DmaUnmap.FLAG_ALL) != 0 && (u.address() != 0 || u.size() != 0)) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_UNMAP with the ALL flag needs address and size 0, address=0x"
                            + Long.toHexString(u.address()) + " size=0x" + Long.toHexString(u.size()));
                }
            }
            case DEVICE_GET_INFO -> {
                exactly(command, payload, DeviceInfo.ENCODED_LENGTH);
                noFds(command, fds);
            }
            case DEVICE_GET_REGION_INFO -> {
                // QEMU and libvfio-user's client send the whole argsz-sized buffer, not the 32 bytes the
                // spec shows; the bytes after the structure are ignored.
                atLeast(command, payload, RegionInfo.ENCODED_LENGTH);
                noFds(command, fds);
            }
            case DEVICE_GET_REGION_IO_FDS -> {
                atLeast(command, payload, RegionIoFds.ENCODED_LENGTH);
                noFds(command, fds);
            }
            case DEVICE_GET_IRQ_INFO -> {
                exactly(command, payload, IrqInfo.ENCODED_LENGTH);
                noFds(command, fds);
            }
            case DEVICE_SET_IRQS -> checkSetIrqs(segment, p, payload, fds);
            case REGION_READ -> {
                exactly(command, payload, RegionAccess.ENCODED_LENGTH);
                noFds(command, fds);
                transfer(command, new RegionAccess.Decoder().wrap(segment, p).count(), maxDataXferSize);
            }
            case REGION_WRITE -> {
                atLeast(command, payload, RegionAccess.ENCODED_LENGTH);
                noFds(command, fds);
                long count = new RegionAccess.Decoder().wrap(segment, p).count();
                transfer(command, count, maxDataXferSize);
                exactly(command, payload, RegionAccess.ENCODED_LENGTH + count);
            }
            case DMA_READ -> {
                exactly(command, payload, DmaAccess.ENCODED_LENGTH);
                noFds(command, fds);
                transfer(command, new DmaAccess.Decoder().wrap(segment, p).count(), maxDataXferSize);
            }
            case DMA_WRITE -> {
                atLeast(command, payload, DmaAccess.ENCODED_LENGTH);
                noFds(command, fds);
                long count = new DmaAccess.Decoder().wrap(segment, p).count();
                transfer(command, count, maxDataXferSize);
                exactly(command, payload, DmaAccess.ENCODED_LENGTH + count);
            }
            case DEVICE_RESET -> {
                exactly(command, payload, 0);
                noFds(command, fds);
            }
            case REGION_WRITE_MULTI -> checkWriteMulti(segment, p, payload, fds);
            case DEVICE_FEATURE -> checkDeviceFeature(segment, p, payload, fds);
            case MIG_DATA_READ -> {
                exactly(command, payload, MigData.ENCODED_LENGTH);
                noFds(command, fds);
                transfer(command, new MigData.Decoder().wrap(segment, p).size(), maxDataXferSize);
            }
            case MIG_DATA_WRITE -> {
                atLeast(command, payload, MigData.ENCODED_LENGTH);
                noFds(command, fds);
                long size = new MigData.Decoder().wrap(segment, p).size();
                transfer(command, size, maxDataXferSize);
                exactly(command, payload, MigData.ENCODED_LENGTH + size);
            }
            case DIRTY_PAGES_RETIRED -> throw new IllegalStateException("handled above");
        }
        return command;
    }

    private static void checkSetIrqs(MemorySegment segment, long p, long payload, int fds) throws VfioUserProtocolException {
        VfioUserCommand command = VfioUserCommand.DEVICE_SET_IRQS;
        atLeast(command, payload, IrqSet.ENCODED_LENGTH);
        IrqSet.Decoder s = new IrqSet.Decoder().wrap(segment, p);
        long flags = s.flags();
        knownFlags(command, flags, IrqSet.DATA_MASK | IrqSet.ACTION_MASK_BITS);
        long data = flags & IrqSet.DATA_MASK;
        long action = flags & IrqSet.ACTION_MASK_BITS;
        if (Long.bitCount(data) != 1 || Long.bitCount(action) != 1) {
            throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS needs exactly one data and one action flag, flags=0x"
                    + Long.toHexString(flags));
        }
        if (s.argsz() < IrqSet.ENCODED_LENGTH) {
            throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS argsz " + s.argsz() + " below " + IrqSet.ENCODED_LENGTH);
        }
        if (s.start() + s.count() > WireLayout.U32_MAX) {
            throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS start + count overflows, start=" + s.start() + " count=" + s.count());
        }
        if (data == IrqSet.DATA_BOOL) {
            exactly(command, payload, IrqSet.ENCODED_LENGTH + s.count());
        } else {
            exactly(command, payload, IrqSet.ENCODED_LENGTH);
        }
        if (data == IrqSet.DATA_EVENTFD) {
            if (fds > s.count()) {
                throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS carried " + fds + " eventfds for count " + s.count());
            }
        } else {
            noFds(command, fds);
        }
        if (data == IrqSet.DATA_NONE && s.count() == 0 && s.start() != 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "SET_IRQS DATA_NONE with count 0 needs start 0, start=" + s.start());
        }
    }

    private static void checkWriteMulti(MemorySegment segment, long p, long payload, int fds) throws VfioUserProtocolException {
        VfioUserCommand command = VfioUserCommand.REGION_WRITE_MULTI;
        atLeast(command, payload, RegionWriteMulti.ENCODED_LENGTH);
        noFds(command, fds);
        long count = new RegionWriteMulti.Decoder().wrap(segment, p).wrCnt();
        if (count == 0 || Long.compareUnsigned(count, RegionWriteMulti.MAX_WRITES) > 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "REGION_WRITE_MULTI wr_cnt must be in [1, "
                    + RegionWriteMulti.MAX_WRITES + "], wr_cnt=" + Long.toUnsignedString(count));
        }
        exactly(command, payload, RegionWriteMulti.ENCODED_LENGTH + count * RegionWriteMultiEntry.ENCODED_LENGTH);
        RegionWriteMultiEntry.Decoder e = new RegionWriteMultiEntry.Decoder();
        for (int i = 0; i < count; i++) {
            e.wrap(segment, p + RegionWriteMulti.ENCODED_LENGTH + (long) i * RegionWriteMultiEntry.ENCODED_LENGTH);
            if (e.count() == 0 || e.count() > RegionWriteMultiEntry.MAX_DATA) {
                throw new VfioUserProtocolException(Errno.EINVAL, "REGION_WRITE_MULTI entry " + i + " count must be in [1, 8], count="
                        + e.count());
            }
        }
    }

    private static void checkDeviceFeature(MemorySegment segment, long p, long payload, int fds) throws VfioUserProtocolException {
        VfioUserCommand command = VfioUserCommand.DEVICE_FEATURE;
        atLeast(command, payload, DeviceFeature.ENCODED_LENGTH);
        noFds(command, fds);
        DeviceFeature.Decoder f = new DeviceFeature.Decoder().wrap(segment, p);
        long flags = f.flags();
        knownFlags(command, flags, DeviceFeature.KNOWN_FLAGS);
        boolean get = (flags & DeviceFeature.GET) != 0;
        boolean set = (flags & DeviceFeature.SET) != 0;
        boolean probe = (flags & DeviceFeature.PROBE) != 0;
        if (get && set && !probe) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DEVICE_FEATURE GET and SET together without PROBE, flags=0x"
                    + Long.toHexString(flags));
        }
        if (!get && !set && !probe) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DEVICE_FEATURE without GET, SET or PROBE, flags=0x"
                    + Long.toHexString(flags));
        }
        if (probe) {
            return;
        }
        long data = payload - DeviceFeature.ENCODED_LENGTH;
        int feature = (int) (flags & DeviceFeature.FEATURE_MASK);
        switch (feature) {
            case DeviceFeature.MIGRATION -> featureData(feature, data, 0);
            case DeviceFeature.MIG_DEVICE_STATE -> featureData(feature, data, set ? MigDeviceState.ENCODED_LENGTH : 0);
            case DeviceFeature.DMA_LOGGING_START -> {
                featureAtLeast(feature, data, DmaLoggingControl.ENCODED_LENGTH);
                long ranges = new DmaLoggingControl.Decoder().wrap(segment, f.dataOffset()).numRanges();
                if (ranges > MAX_DMA_LOGGING_RANGES) {
                    throw new VfioUserProtocolException(Errno.E2BIG, "DMA_LOGGING_START with " + ranges
                            + " ranges, at most " + MAX_DMA_LOGGING_RANGES);
                }
                featureData(feature, data, DmaLoggingControl.ENCODED_LENGTH + ranges * DmaLoggingRange.ENCODED_LENGTH);
            }
            case DeviceFeature.DMA_LOGGING_STOP -> {
                if (data != 0) {
                    featureAtLeast(feature, data, DmaLoggingControl.ENCODED_LENGTH);
                }
            }
            case DeviceFeature.DMA_LOGGING_REPORT -> featureData(feature, data, DmaLoggingReport.ENCODED_LENGTH);
            default -> {
                // Unknown features are the handler's to refuse (ENOTSUP); their data has no rules here.
            }
        }
    }

    /**
     * Checks a reply's shape against the command it answers: header-only when the Error bit is set, the
     * minimum payload otherwise.
     *
     * @param segment the buffer
     * @param offset where the header starts
     * @param answered the command the reply answers
     * @throws VfioUserProtocolException (EINVAL) when the reply's command or size does not fit
     */
    public static void checkReply(MemorySegment segment, long offset, VfioUserCommand answered) throws VfioUserProtocolException {
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(segment, offset);
        if (!h.isReply()) {
            throw new VfioUserProtocolException(Errno.EINVAL, "expected a reply to " + answered + ", got a command " + h.command());
        }
        if (h.command() != answered.code()) {
            throw new VfioUserProtocolException(Errno.EINVAL, "reply names command " + h.command() + ", expected " + answered.code());
        }
        long payload = h.size() - VfioUserHeader.ENCODED_LENGTH;
        if (h.isError()) {
            return; // The spec says an error reply is the header alone; extra bytes are ignored, as QEMU does.
        }
        long p = offset + VfioUserHeader.ENCODED_LENGTH;
        switch (answered) {
            case VERSION -> atLeast(answered, payload, Version.ENCODED_LENGTH);
            case DMA_UNMAP -> atLeastOrNone(answered, payload, DmaUnmap.ENCODED_LENGTH);
            case DEVICE_GET_INFO -> atLeast(answered, payload, DeviceInfo.ENCODED_LENGTH);
            case DEVICE_GET_REGION_INFO -> atLeast(answered, payload, RegionInfo.ENCODED_LENGTH);
            case DEVICE_GET_REGION_IO_FDS -> atLeast(answered, payload, RegionIoFds.ENCODED_LENGTH);
            case DEVICE_GET_IRQ_INFO -> atLeast(answered, payload, IrqInfo.ENCODED_LENGTH);
            case REGION_READ -> {
                atLeast(answered, payload, RegionAccess.ENCODED_LENGTH);
                exactly(answered, payload, RegionAccess.ENCODED_LENGTH + new RegionAccess.Decoder().wrap(segment, p).count());
            }
            case REGION_WRITE -> atLeast(answered, payload, RegionAccess.ENCODED_LENGTH);
            case DMA_READ -> atLeast(answered, payload, DmaAccess.ENCODED_LENGTH);
            case DMA_WRITE -> {
                // QEMU answers with the header alone, the spec shows 12 bytes, libvfio-user expects 16.
                if (payload != 0 && payload != DmaAccess.WRITE_REPLY_SPEC_LENGTH && payload != DmaAccess.ENCODED_LENGTH) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_WRITE reply of " + payload + " bytes, expected 0, 12 or 16");
                }
            }
            case REGION_WRITE_MULTI -> atLeastOrNone(answered, payload, RegionWriteMulti.ENCODED_LENGTH);
            case DEVICE_FEATURE -> atLeast(answered, payload, DeviceFeature.ENCODED_LENGTH);
            case MIG_DATA_READ -> {
                // libvfio-user sizes the reply for the bytes asked and says in `size` how many are valid.
                atLeast(answered, payload, MigData.ENCODED_LENGTH);
                atLeast(answered, payload, MigData.ENCODED_LENGTH + new MigData.Decoder().wrap(segment, p).size());
            }
            default -> {
                // DMA_MAP, SET_IRQS, DEVICE_RESET, MIG_DATA_WRITE: no payload is defined; extra bytes are ignored.
            }
        }
    }

    private static void atLeastOrNone(VfioUserCommand c, long payload, long min) throws VfioUserProtocolException {
        if (payload != 0) {
            atLeast(c, payload, min);
        }
    }

    private static void exactly(VfioUserCommand c, long payload, long want) throws VfioUserProtocolException {
        if (payload != want) {
            throw new VfioUserProtocolException(Errno.EINVAL, c + " payload is " + payload + " bytes, expected " + want);
        }
    }

    private static void atLeast(VfioUserCommand c, long payload, long min) throws VfioUserProtocolException {
        if (payload < min) {
            throw new VfioUserProtocolException(Errno.EINVAL, c + " payload is " + payload + " bytes, at least " + min + " expected");
        }
    }

    private static void noFds(VfioUserCommand c, int fds) throws VfioUserProtocolException {
        if (fds != 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, c + " carried " + fds + " fds, none belong to it");
        }
    }

    private static void knownFlags(VfioUserCommand c, long flags, long known) throws VfioUserProtocolException {
        if ((flags & ~known) != 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, c + " has unknown flag bits, flags=0x" + Long.toHexString(flags));
        }
    }

    private static void transfer(VfioUserCommand c, long count, long max) throws VfioUserProtocolException {
        if (Long.compareUnsigned(count, max) > 0) {
            throw new VfioUserProtocolException(Errno.E2BIG, c + " count " + Long.toUnsignedString(count)
                    + " exceeds max_data_xfer_size " + max);
        }
    }

    private static void checkedEnd(VfioUserCommand c, long address, long size) throws VfioUserProtocolException {
        if (Long.compareUnsigned(address + size - 1, address) < 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, c + " range wraps, address=0x" + Long.toHexString(address)
                    + " size=0x" + Long.toHexString(size));
        }
    }

    private static void featureData(int feature, long data, long want) throws VfioUserProtocolException {
        if (data != want) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DEVICE_FEATURE " + feature + " data is " + data + " bytes, expected " + want);
        }
    }

    private static void featureAtLeast(int feature, long data, long min) throws VfioUserProtocolException {
        if (data < min) {
            throw new VfioUserProtocolException(Errno.EINVAL, "DEVICE_FEATURE " + feature + " data is " + data
                    + " bytes, at least " + min + " expected");
        }
    }
}
