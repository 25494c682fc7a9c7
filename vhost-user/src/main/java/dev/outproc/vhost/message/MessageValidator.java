package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;

import static dev.outproc.vhost.message.VhostUserProtocolException.Reason;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U32;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U64;
import static dev.outproc.vhost.message.WireLayout.NATIVE_U8;

/**
 * The syntax checks of vhost-user messages: everything that can be decided from the header, the payload
 * bytes and the number of fds, without knowing the negotiated features or the connection's state.
 *
 * <p>Checks, in order: {@link #checkFraming} (version 1, reserved flag bits zero, REPLY flag as the stream
 * expects, size within the cap), {@link #lookup} (a request number the specification defines), then
 * {@link #checkPayload} (exact size for the request, variable sizes that match their own count fields,
 * fields the specification reserves or restricts, and the number of fds). Allocation happens only when a
 * check fails.
 */
public final class MessageValidator {
    /** The default payload cap: 4 KiB, as rust-vmm's {@code MAX_MSG_SIZE}; the largest defined payload is 2056. */
    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 4096;

    private MessageValidator() {
    }

    /**
     * Checks the header's flags and size. A failure means the rest of the stream cannot be trusted: the
     * exception says the connection must close.
     *
     * @param stream what the reader expects
     * @param request the header's request number
     * @param flags the header's flags
     * @param size the header's size
     * @param maxPayloadBytes the cap on payload size
     * @throws VhostUserProtocolException when a rule is broken
     */
    public static void checkFraming(MessageStream stream, long request, long flags, long size, int maxPayloadBytes)
            throws VhostUserProtocolException {
        if ((flags & VhostUserHeader.VERSION_MASK) != VhostUserHeader.VERSION) {
            throw new VhostUserProtocolException(Reason.BAD_VERSION, request, flags, size, true,
                    "version must be " + VhostUserHeader.VERSION + ", version=" + (flags & VhostUserHeader.VERSION_MASK));
        }
        if ((flags & ~VhostUserHeader.KNOWN_FLAGS) != 0) {
            throw new VhostUserProtocolException(Reason.RESERVED_FLAGS, request, flags, size, true,
                    "flag bits 4-31 are reserved, reserved bits=0x" + Long.toHexString(flags & ~VhostUserHeader.KNOWN_FLAGS));
        }
        boolean reply = (flags & VhostUserHeader.REPLY_FLAG) != 0;
        if (reply != stream.replies()) {
            throw new VhostUserProtocolException(Reason.WRONG_REPLY_FLAG, request, flags, size, true,
                    (stream.replies() ? "a reply must carry" : "a request must not carry") + " the REPLY flag, stream=" + stream);
        }
        if (reply && (flags & VhostUserHeader.NEED_REPLY_FLAG) != 0) {
            throw new VhostUserProtocolException(Reason.NEED_REPLY_ON_REPLY, request, flags, size, true,
                    "a reply must not carry NEED_REPLY");
        }
        if (size > maxPayloadBytes) {
            throw new VhostUserProtocolException(Reason.PAYLOAD_TOO_LARGE, request, flags, size, true,
                    "payload size over the cap, cap=" + maxPayloadBytes + "; payload not read");
        }
    }

    /**
     * Finds the request a header names. Call after the payload was consumed: the exception says the
     * stream is still in step.
     *
     * @param stream what the reader expects
     * @param request the header's request number
     * @param flags the header's flags
     * @param size the header's size
     * @return the request
     * @throws VhostUserProtocolException when the number is not defined on this stream's socket
     */
    public static VhostUserRequest lookup(MessageStream stream, long request, long flags, long size)
            throws VhostUserProtocolException {
        VhostUserRequest r = stream.lookup(request);
        if (r == null) {
            throw new VhostUserProtocolException(Reason.UNKNOWN_REQUEST, request, flags, size, false,
                    "no " + (stream.backendChannel() ? "back-end" : "front-end") + " request has this number");
        }
        return r;
    }

    /**
     * Checks a whole message held in one segment: header, then payload, with {@code fdCount} fds. For
     * tests and fuzzing; readers use the three steps so that they can read the payload in between.
     *
     * @param stream what the reader expects
     * @param message the bytes: a 12-byte header and exactly {@code size} payload bytes
     * @param fdCount how many fds came with the message
     * @param maxPayloadBytes the cap on payload size
     * @return the request
     * @throws VhostUserProtocolException when a rule is broken
     */
    public static VhostUserRequest check(MessageStream stream, MemorySegment message, int fdCount, int maxPayloadBytes)
            throws VhostUserProtocolException {
        if (message.byteSize() < VhostUserHeader.ENCODED_LENGTH) {
            throw new VhostUserProtocolException(Reason.PAYLOAD_SIZE, -1, -1, -1, true,
                    "a message needs a 12-byte header, bytes=" + message.byteSize());
        }
        long request = Integer.toUnsignedLong(message.get(NATIVE_U32, VhostUserHeader.REQUEST_OFFSET));
        long flags = Integer.toUnsignedLong(message.get(NATIVE_U32, VhostUserHeader.FLAGS_OFFSET));
        long size = Integer.toUnsignedLong(message.get(NATIVE_U32, VhostUserHeader.SIZE_OFFSET));
        checkFraming(stream, request, flags, size, maxPayloadBytes);
        if (message.byteSize() - VhostUserHeader.ENCODED_LENGTH != size) {
            throw new VhostUserProtocolException(Reason.PAYLOAD_SIZE, request, flags, size, true,
                    "the header's size differs from the bytes that follow, bytes=" + (message.byteSize() - VhostUserHeader.ENCODED_LENGTH));
        }
        VhostUserRequest r = lookup(stream, request, flags, size);
        try {
            checkPayload(r, stream.replies(), message, VhostUserHeader.ENCODED_LENGTH, size, fdCount);
        } catch (VhostUserProtocolException e) {
            throw e.withHeader(request, flags, size);
        }
        return r;
    }

    /**
     * Checks a payload and the fd count against the request's rules. The payload's framing is intact
     * whatever this finds.
     *
     * @param request the request (or the request being answered)
     * @param reply whether the message is a reply
     * @param segment the buffer
     * @param offset where the payload starts
     * @param size the payload size from the header
     * @param fdCount how many fds came with the message
     * @throws VhostUserProtocolException when a rule is broken
     */
    public static void checkPayload(VhostUserRequest request, boolean reply, MemorySegment segment, long offset,
                                    long size, int fdCount) throws VhostUserProtocolException {
        if (reply) {
            checkReply(request, segment, offset, size, fdCount);
            return;
        }
        PayloadType type = request.requestPayload();
        checkSize(request, type, segment, offset, size);
        int minFds = request.minRequestFds();
        int maxFds = request.maxRequestFds();
        switch (type) {
            case MEM_TABLE -> {
                // one fd per region, in order (vhost-user.rst, SET_MEM_TABLE)
                int n = (int) Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + MemTable.NREGIONS_OFFSET));
                minFds = n;
                maxFds = n;
            }
            case U64 -> {
                long value = segment.get(NATIVE_U64, offset);
                if (request == FrontendRequest.SET_VRING_KICK || request == FrontendRequest.SET_VRING_CALL
                        || request == FrontendRequest.SET_VRING_ERR) {
                    if ((value & ~VringFdIndex.KNOWN_BITS) != 0) {
                        throw new VhostUserProtocolException(Reason.RESERVED_FIELD, request.specName()
                                + " defines only bits 0-8 (index, no-fd flag), value=0x" + Long.toHexString(value));
                    }
                    int expected = VringFdIndex.noFd(value) ? 0 : 1;
                    minFds = expected;
                    maxFds = expected;
                } else if (request == FrontendRequest.SET_STATUS && (value & ~0xFFL) != 0) {
                    throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                            "the virtio device status is one byte, status=0x" + Long.toHexString(value));
                }
            }
            case VRING_STATE -> checkVringState(request, segment, offset);
            case VRING_ADDR -> {
                long flags = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + VringAddr.FLAGS_OFFSET));
                if ((flags & ~VringAddr.KNOWN_FLAGS) != 0) {
                    throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                            "vring address flags define only bit 0 (VHOST_VRING_F_LOG), flags=0x" + Long.toHexString(flags));
                }
            }
            case IOTLB -> {
                int iotlbType = Byte.toUnsignedInt(segment.get(NATIVE_U8, offset + IotlbMsg.TYPE_OFFSET));
                boolean fromBackend = request.sentByBackend();
                boolean ok = fromBackend
                        ? iotlbType == IotlbMsg.TYPE_MISS || iotlbType == IotlbMsg.TYPE_ACCESS_FAIL
                        : iotlbType == IotlbMsg.TYPE_UPDATE || iotlbType == IotlbMsg.TYPE_INVALIDATE;
                if (!ok) {
                    throw new VhostUserProtocolException(Reason.INVALID_FIELD, (fromBackend
                            ? "a back-end IOTLB message is a miss (1) or an access failure (4), type="
                            : "a front-end IOTLB message is an update (2) or an invalidation (3), type=") + iotlbType);
                }
            }
            case VRING_AREA -> {
                long word = segment.get(NATIVE_U64, offset + VringArea.INDEX_AND_FLAGS_OFFSET);
                if ((word & ~VringFdIndex.KNOWN_BITS) != 0) {
                    throw new VhostUserProtocolException(Reason.RESERVED_FIELD,
                            "the vring area word defines only bits 0-8 (index, no-fd flag), value=0x" + Long.toHexString(word));
                }
                int expected = VringFdIndex.noFd(word) ? 0 : 1;
                minFds = expected;
                maxFds = expected;
            }
            case DEVICE_STATE_TRANSFER -> {
                long direction = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + DeviceStateTransfer.DIRECTION_OFFSET));
                long phase = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + DeviceStateTransfer.PHASE_OFFSET));
                if (direction > DeviceStateTransfer.DIRECTION_LOAD) {
                    throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                            "transfer direction is 0 (save) or 1 (load), direction=" + direction);
                }
                if (phase != DeviceStateTransfer.PHASE_STOPPED) {
                    throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                            "the only migration phase is 0 (stopped), phase=" + phase);
                }
            }
            case SHMEM_MAP -> {
                long flags = segment.get(NATIVE_U64, offset + ShmemMap.FLAGS_OFFSET);
                if ((flags & ~ShmemMap.KNOWN_FLAGS) != 0) {
                    throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                            "mmap flags define only bit 0 (read-write), flags=0x" + Long.toHexString(flags));
                }
            }
            default -> {
                // no field rules beyond the size
            }
        }
        checkFds(request, fdCount, minFds, maxFds);
    }

    private static void checkReply(VhostUserRequest request, MemorySegment segment, long offset, long size, int fdCount)
            throws VhostUserProtocolException {
        if (request.ackReplyAllowed() && size == U64Payload.ENCODED_LENGTH) {
            checkFds(request, fdCount, 0, 0);
            return;
        }
        if (request == FrontendRequest.GET_CONFIG && size == 0) {
            // "vhost-user back-end uses zero length of payload to indicate an error"
            checkFds(request, fdCount, 0, 0);
            return;
        }
        PayloadType type = request.replyPayload();
        checkSize(request, type, segment, offset, size);
        int minFds = request.minReplyFds();
        int maxFds = request.maxReplyFds();
        if (request == FrontendRequest.SET_DEVICE_STATE_FD) {
            long value = segment.get(NATIVE_U64, offset);
            if ((value & ~VringFdIndex.KNOWN_BITS) != 0) {
                throw new VhostUserProtocolException(Reason.RESERVED_FIELD,
                        "the device-state reply defines only bits 0-8 (error code, no-fd flag), value=0x" + Long.toHexString(value));
            }
            boolean error = (value & VringFdIndex.INDEX_MASK) != 0;
            boolean noFd = VringFdIndex.noFd(value);
            if (error && !noFd) {
                throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                        "the back-end must not both indicate an error and return an fd, value=0x" + Long.toHexString(value));
            }
            minFds = noFd ? 0 : 1;
            maxFds = minFds;
        } else if (request == FrontendRequest.GET_SHARED_OBJECT || request == BackendRequest.SHARED_OBJECT_LOOKUP) {
            if (segment.get(NATIVE_U64, offset) != 0) {
                maxFds = 0; // "if the operation fails, no fd is sent"
            }
        } else if (type == PayloadType.SHMEM_CONFIG) {
            long n = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ShmemConfig.NREGIONS_OFFSET));
            if (n > ShmemConfig.MAX_REGIONS) {
                throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                        "at most " + ShmemConfig.MAX_REGIONS + " shared memory regions, nregions=" + n);
            }
        } else if (type == PayloadType.MEM_TABLE) {
            maxFds = 0; // the postcopy reply carries addresses, not fds
        }
        checkFds(request, fdCount, minFds, maxFds);
    }

    private static void checkSize(VhostUserRequest request, PayloadType type, MemorySegment segment, long offset, long size)
            throws VhostUserProtocolException {
        if (!type.sizeInBounds(size)) {
            throw new VhostUserProtocolException(Reason.PAYLOAD_SIZE, request.specName() + " takes "
                    + (type.isFixedSize() ? type.minBytes() + " payload bytes" : type.minBytes() + ".." + type.maxBytes()
                    + " payload bytes") + " (" + type + "), size=" + size);
        }
        if (type == PayloadType.MEM_TABLE) {
            long n = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + MemTable.NREGIONS_OFFSET));
            if (n > MemTable.MAX_REGIONS) {
                throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                        "a memory table holds at most " + MemTable.MAX_REGIONS + " regions, nregions=" + n);
            }
            if (size != MemTable.encodedLength((int) n)) {
                throw new VhostUserProtocolException(Reason.PAYLOAD_SIZE,
                        "a memory table of " + n + " regions is " + MemTable.encodedLength((int) n) + " bytes, size=" + size);
            }
        } else if (type == PayloadType.CONFIG) {
            long configSize = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ConfigSpace.CONFIG_SIZE_OFFSET));
            long flags = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + ConfigSpace.FLAGS_OFFSET));
            if (configSize > ConfigSpace.MAX_CONFIG_BYTES) {
                throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                        "a config access is at most " + ConfigSpace.MAX_CONFIG_BYTES + " bytes, config size=" + configSize);
            }
            if (size != ConfigSpace.PAYLOAD_OFFSET + configSize) {
                throw new VhostUserProtocolException(Reason.PAYLOAD_SIZE,
                        "a config access of " + configSize + " bytes is " + (ConfigSpace.PAYLOAD_OFFSET + configSize)
                                + " payload bytes, size=" + size);
            }
            if (flags > ConfigSpace.FLAGS_MIGRATION) {
                throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                        "config flags are 0 (writable fields) or 1 (live migration), flags=" + flags);
            }
        }
    }

    private static void checkVringState(VhostUserRequest request, MemorySegment segment, long offset)
            throws VhostUserProtocolException {
        long num = Integer.toUnsignedLong(segment.get(NATIVE_U32, offset + VringState.NUM_OFFSET));
        // GET_VRING_BASE's num is unused, but DPDK's virtio-user front-end sends a non-zero value there
        // (seen: 49509 at teardown): accepted and ignored, since real peers send it.
        if (request == FrontendRequest.VRING_KICK
                || request == BackendRequest.VRING_CALL || request == BackendRequest.VRING_ERR) {
            if (num != 0) {
                throw new VhostUserProtocolException(Reason.RESERVED_FIELD,
                        request.specName() + ": num is reserved and must be 0, num=" + num);
            }
        } else if (request == FrontendRequest.SET_VRING_ENABLE || request == FrontendRequest.SET_VRING_ENDIAN) {
            if (num > 1) {
                throw new VhostUserProtocolException(Reason.INVALID_FIELD,
                        request.specName() + ": num is 0 or 1, num=" + num);
            }
        }
    }

    private static void checkFds(VhostUserRequest request, int fdCount, int minFds, int maxFds)
            throws VhostUserProtocolException {
        if (fdCount > maxFds) {
            throw new VhostUserProtocolException(Reason.TOO_MANY_FDS,
                    request.specName() + " carries at most " + maxFds + " fd(s) here, fds=" + fdCount);
        }
        if (fdCount < minFds) {
            throw new VhostUserProtocolException(Reason.MISSING_FDS,
                    request.specName() + " needs " + minFds + " fd(s) here, fds=" + fdCount);
        }
    }
}
