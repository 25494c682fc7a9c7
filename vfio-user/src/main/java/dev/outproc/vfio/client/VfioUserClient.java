package dev.outproc.vfio.client;

import dev.outproc.core.event.EventFd;
import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.memory.GuestMemory;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.vfio.connection.VfioUserChannel;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DeviceFeature;
import dev.outproc.vfio.message.DeviceInfo;
import dev.outproc.vfio.message.DmaAccess;
import dev.outproc.vfio.message.DmaLoggingControl;
import dev.outproc.vfio.message.DmaLoggingRange;
import dev.outproc.vfio.message.DmaLoggingReport;
import dev.outproc.vfio.message.DmaMap;
import dev.outproc.vfio.message.DmaUnmap;
import dev.outproc.vfio.message.IrqInfo;
import dev.outproc.vfio.message.IrqSet;
import dev.outproc.vfio.message.MessageValidator;
import dev.outproc.vfio.message.MigData;
import dev.outproc.vfio.message.MigDeviceState;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.RegionAccess;
import dev.outproc.vfio.message.RegionCapabilities;
import dev.outproc.vfio.message.RegionInfo;
import dev.outproc.vfio.message.Version;
import dev.outproc.vfio.message.VfioUserCommand;
import dev.outproc.vfio.message.VfioUserHeader;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.message.WireLayout;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * A vfio-user client: negotiates, shares DMA memory, enumerates regions and IRQs, reads and writes
 * regions, installs eventfds, drives migration. It speaks to any server that follows vfio-user.rst (our
 * {@link dev.outproc.vfio.server.VfioUserServer}, libvfio-user's samples).
 *
 * <p>Calls are synchronous and serialized: each sends a command and reads until its reply arrives.
 * DMA_READ/WRITE commands the server sends meanwhile are answered from the memory given to
 * {@link #serveDmaFrom}. An error reply becomes a {@link VfioUserProtocolException} with the server's errno.
 *
 * <p>Twin socket: when the proposed capabilities say {@code twin_socket.supported} and the server enables
 * it (the reply names the socket it passed by {@code twin_socket.fd_index}), a thread of this client answers
 * the server's DMA commands on that socket, so they never cross our commands on the main socket. A reply
 * that claims twin-socket mode without a valid fd ends the connection, as vfio-user.rst requires.
 */
public final class VfioUserClient implements AutoCloseable {
    /** The largest reply accepted: a REGION_READ of 1 MiB, a DMA logging bitmap of 4 MiB. */
    public static final long MAX_MESSAGE_BYTES = 16L + 64 + (4 << 20);

    private final VfioUserChannel channel;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment out;
    private int nextMsgId = 1;
    private Capabilities server = Capabilities.DEFAULTS;
    private volatile GuestMemory dmaMemory = GuestMemory.empty();
    private MemorySegment dmaAnswer;
    private volatile VfioUserChannel twin;
    private Thread twinThread;

    private VfioUserClient(MessageChannel socket) {
        this.channel = new VfioUserChannel(socket, MAX_MESSAGE_BYTES, Capabilities.MAX_MSG_FDS_LIMIT);
        this.out = arena.allocate(MAX_MESSAGE_BYTES, 8);
    }

    /**
     * Connects to a server's socket.
     *
     * @param path the socket path
     * @return the client (not yet negotiated)
     * @throws IOException when the connection fails
     */
    public static VfioUserClient connect(Path path) throws IOException {
        return new VfioUserClient(MessageChannel.connect(path));
    }

    /**
     * Wraps a connected socket.
     *
     * @param socket the socket (owned from now on)
     * @return the client
     */
    public static VfioUserClient over(MessageChannel socket) {
        return new VfioUserClient(socket);
    }

    /** A reply: the message (valid until the next call) and the fds that came with it. */
    private record Reply(MemorySegment message, ReceivedFds fds) {
        long payloadOffset() {
            return VfioUserHeader.ENCODED_LENGTH;
        }
    }

    private Reply call(VfioUserCommand command, long payload, List<OwnedFd> fds) throws IOException {
        int id = nextMsgId++ & 0xFFFF;
        new VfioUserHeader.Encoder().wrap(out, 0).command(id, command, payload, false);
        channel.send(out.asSlice(0, VfioUserHeader.ENCODED_LENGTH + payload), fds);
        while (true) {
            VfioUserChannel.Received r = channel.receive();
            VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(r.message(), 0);
            if (!h.isReply()) {
                try (ReceivedFds ignored = r.fds()) {
                    answerServerCommand(r.message());
                }
                continue;
            }
            if (h.msgId() != id) {
                r.fds().close();
                throw new VfioUserProtocolException(Errno.EINVAL, "reply with msg_id " + h.msgId() + ", expected " + id);
            }
            try {
                MessageValidator.checkReply(r.message(), 0, command);
            } catch (VfioUserProtocolException e) {
                r.fds().close();
                throw e;
            }
            if (h.isError()) {
                r.fds().close();
                throw new VfioUserProtocolException((int) h.error(), command + " failed: " + Errno.name((int) h.error()));
            }
            return new Reply(r.message(), r.fds());
        }
    }

    private void answerServerCommand(MemorySegment m) throws IOException {
        if (dmaAnswer == null) {
            dmaAnswer = answerBuffer(arena);
        }
        answerServerCommand(channel, dmaAnswer, m);
    }

    private static MemorySegment answerBuffer(Arena arena) {
        return arena.allocate(VfioUserHeader.ENCODED_LENGTH + DmaAccess.ENCODED_LENGTH + Capabilities.DEFAULT_MAX_DATA_XFER_SIZE, 8);
    }

    private void answerServerCommand(VfioUserChannel channel, MemorySegment answer, MemorySegment m) throws IOException {
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(m, 0);
        int id = h.msgId();
        int command = h.command();
        try {
            VfioUserCommand c = MessageValidator.checkCommand(m, 0, 0, VfioUserCommand.Direction.SERVER_TO_CLIENT,
                    Capabilities.DEFAULT_MAX_DATA_XFER_SIZE, 0);
            DmaAccess.Decoder d = new DmaAccess.Decoder().wrap(m, VfioUserHeader.ENCODED_LENGTH);
            long p = VfioUserHeader.ENCODED_LENGTH;
            if (c == VfioUserCommand.DMA_READ) {
                dmaMemory.read(d.address(), answer.asSlice(p + DmaAccess.ENCODED_LENGTH, d.count()));
                new DmaAccess.Encoder().wrap(answer, p).address(d.address()).count(d.count());
                new VfioUserHeader.Encoder().wrap(answer, 0).reply(id, command, DmaAccess.ENCODED_LENGTH + d.count());
                channel.send(answer.asSlice(0, p + DmaAccess.ENCODED_LENGTH + d.count()));
            } else {
                dmaMemory.write(d.address(), m.asSlice(d.dataOffset(), d.count()));
                new DmaAccess.Encoder().wrap(answer, p).address(d.address()).count(d.count());
                new VfioUserHeader.Encoder().wrap(answer, 0).reply(id, command, DmaAccess.ENCODED_LENGTH);
                channel.send(answer.asSlice(0, p + DmaAccess.ENCODED_LENGTH));
            }
        } catch (VfioUserProtocolException e) {
            channel.sendError(id, command, e.errno());
        } catch (dev.outproc.core.memory.GuestMemoryException e) {
            channel.sendError(id, command, Errno.EFAULT);
        }
    }

    /**
     * Waits for commands the server sends on its own (DMA_READ/WRITE) and answers them, without sending
     * any command meanwhile: without twin-socket mode a command of ours crossing a DMA command of the
     * server's confuses servers such as libvfio-user (its issue #279). Returns once no message arrived
     * for {@code quietMillis}.
     *
     * @param quietMillis how long the socket must stay silent
     * @return how many server commands were answered
     * @throws IOException on transport failures or an unexpected reply
     */
    public int serveServerCommands(int quietMillis) throws IOException {
        int answered = 0;
        while (true) {
            channel.channel().setReadTimeoutMillis(quietMillis);
            VfioUserChannel.Received r;
            try {
                r = channel.receive();
            } catch (dev.outproc.core.transport.PeerClosedException e) {
                throw e;
            } catch (dev.outproc.core.transport.TransportException e) {
                return answered; // the quiet period passed
            } finally {
                if (channel.isOpen()) {
                    channel.channel().setReadTimeoutMillis(0);
                }
            }
            try (ReceivedFds ignored = r.fds()) {
                VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(r.message(), 0);
                if (h.isReply()) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "reply msg_id " + h.msgId() + " while no command was outstanding");
                }
                answerServerCommand(r.message());
                answered++;
            }
        }
    }

    /**
     * Negotiates (VFIO_USER_VERSION 0.1 with the given capabilities).
     *
     * @param proposed the capabilities to propose
     * @return the server's capabilities
     * @throws IOException when the server refuses or answers malformed JSON
     */
    public Capabilities negotiate(Capabilities proposed) throws IOException {
        byte[] json = proposed.toJson();
        long p = VfioUserHeader.ENCODED_LENGTH;
        new Version.Encoder().wrap(out, p).major(Version.SUPPORTED_MAJOR).minor(Version.SUPPORTED_MINOR);
        MemorySegment.copy(json, 0, out, WireLayout.NATIVE_U8, p + Version.ENCODED_LENGTH, json.length);
        out.set(WireLayout.NATIVE_U8, p + Version.ENCODED_LENGTH + json.length, (byte) 0);
        Reply r = call(VfioUserCommand.VERSION, Version.ENCODED_LENGTH + json.length + 1L, List.of());
        try (ReceivedFds fds = r.fds()) {
            Version.Decoder v = new Version.Decoder().wrap(r.message(), p);
            if (v.major() != Version.SUPPORTED_MAJOR) {
                throw new VfioUserProtocolException(Errno.ENOTSUP, "server answered major version " + v.major());
            }
            server = Capabilities.parse(r.message(), v.dataOffset(), r.message().byteSize() - v.dataOffset());
            if (proposed.twinSocketSupported() && server.twinSocketSupported()) {
                int index = server.twinSocketFdIndex();
                if (index < 0 || index >= fds.count()) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "the server enabled twin_socket with fd_index " + index + " but sent "
                            + fds.count() + " fds");
                }
                startTwin(MessageChannel.adopt(fds.all().get(index)));
            }
            return server;
        }
    }

    /** Answers the server's DMA commands on the twin socket until either side closes it. */
    private void startTwin(MessageChannel socket) {
        VfioUserChannel t = new VfioUserChannel(socket, MAX_MESSAGE_BYTES, 0);
        twin = t;
        twinThread = Thread.ofPlatform().daemon().name("vfio-user-client-twin").start(() -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment answer = answerBuffer(a);
                while (true) {
                    VfioUserChannel.Received r = t.receive();
                    try (ReceivedFds ignored = r.fds()) {
                        if (new VfioUserHeader.Decoder().wrap(r.message(), 0).isReply()) {
                            throw new VfioUserProtocolException(Errno.EINVAL, "a reply on the twin socket, which carries server commands");
                        }
                        answerServerCommand(t, answer, r.message());
                    }
                }
            } catch (IOException e) {
                t.close();
            } finally {
                t.release();
            }
        });
    }

    /** {@return whether twin-socket mode was negotiated} */
    public boolean twinSocket() {
        return twin != null;
    }

    /** {@return the server's capabilities (defaults before {@link #negotiate})} */
    public Capabilities serverCapabilities() {
        return server;
    }

    /**
     * Sets the memory that answers the server's DMA_READ/WRITE commands.
     *
     * @param memory the memory, addressed by DMA address
     */
    public void serveDmaFrom(GuestMemory memory) {
        this.dmaMemory = memory;
    }

    /**
     * Shares a DMA window (VFIO_USER_DMA_MAP).
     *
     * @param address the DMA address
     * @param sizeBytes the size
     * @param flags READ and WRITE bits of {@link DmaMap}
     * @param fd the fd backing it, or {@code null} for a window reached through DMA_READ/WRITE
     * @param fileOffset where the window starts in the fd
     * @throws IOException when the server refuses
     */
    public void dmaMap(long address, long sizeBytes, int flags, OwnedFd fd, long fileOffset) throws IOException {
        new DmaMap.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(DmaMap.ENCODED_LENGTH).flags(flags).offset(fileOffset)
                .address(address).size(sizeBytes);
        call(VfioUserCommand.DMA_MAP, DmaMap.ENCODED_LENGTH, fd == null ? List.of() : List.of(fd)).fds().close();
    }

    /**
     * Withdraws a DMA window (VFIO_USER_DMA_UNMAP).
     *
     * @param address the DMA address
     * @param sizeBytes the size
     * @throws IOException when the server refuses
     */
    public void dmaUnmap(long address, long sizeBytes) throws IOException {
        unmap(0, address, sizeBytes);
    }

    /**
     * Withdraws every DMA window (VFIO_USER_DMA_UNMAP with VFIO_DMA_UNMAP_FLAG_ALL, as QEMU sends it).
     *
     * @throws IOException when the server refuses
     */
    public void dmaUnmapAll() throws IOException {
        unmap(DmaUnmap.FLAG_ALL, 0, 0);
    }

    private void unmap(int flags, long address, long sizeBytes) throws IOException {
        new DmaUnmap.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(DmaUnmap.ENCODED_LENGTH).flags(flags).address(address).size(sizeBytes);
        call(VfioUserCommand.DMA_UNMAP, DmaUnmap.ENCODED_LENGTH, List.of()).fds().close();
    }

    /**
     * Device information.
     *
     * @param flags VFIO_DEVICE_FLAGS_*
     * @param numRegions the number of regions
     * @param numIrqs the number of IRQ indexes
     */
    public record DeviceInformation(long flags, long numRegions, long numIrqs) {
    }

    /**
     * VFIO_USER_DEVICE_GET_INFO.
     *
     * @return the device information
     * @throws IOException when the server refuses
     */
    public DeviceInformation deviceInfo() throws IOException {
        new DeviceInfo.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).clear().argsz(DeviceInfo.ENCODED_LENGTH);
        Reply r = call(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.ENCODED_LENGTH, List.of());
        try (ReceivedFds ignored = r.fds()) {
            DeviceInfo.Decoder d = new DeviceInfo.Decoder().wrap(r.message(), r.payloadOffset());
            return new DeviceInformation(d.flags(), d.numRegions(), d.numIrqs());
        }
    }

    /**
     * A region as the server describes it.
     *
     * @param index the region index
     * @param flags VFIO_REGION_INFO_FLAG_*
     * @param sizeBytes the size
     * @param mmapOffset the mmap offset in {@code fd}
     * @param fd the fd to mmap, or {@code null} (owned by the caller)
     * @param capabilities the capability chain
     */
    public record Region(int index, long flags, long sizeBytes, long mmapOffset, OwnedFd fd, RegionCapabilities.Chain capabilities)
            implements AutoCloseable {
        /** Closes the fd, if any. */
        @Override
        public void close() {
            if (fd != null) {
                fd.close();
            }
        }
    }

    /**
     * VFIO_USER_DEVICE_GET_REGION_INFO, asking again with a larger argsz when the capabilities did not fit.
     *
     * @param index the region index
     * @return the region (close it to close its fd)
     * @throws IOException when the server refuses or the reply is malformed
     */
    public Region regionInfo(int index) throws IOException {
        long argsz = 256;
        for (int attempt = 0; attempt < 2; attempt++) {
            new RegionInfo.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).clear().argsz(argsz).index(index);
            Reply r = call(VfioUserCommand.DEVICE_GET_REGION_INFO, RegionInfo.ENCODED_LENGTH, List.of());
            RegionInfo.Decoder d = new RegionInfo.Decoder().wrap(r.message(), r.payloadOffset());
            long payload = r.message().byteSize() - r.payloadOffset();
            if (d.argsz() > argsz && attempt == 0 && d.argsz() < (1 << 20)) {
                argsz = d.argsz();
                r.fds().close();
                continue;
            }
            try {
                RegionCapabilities.Chain chain = RegionCapabilities.read(r.message(), r.payloadOffset(), payload);
                OwnedFd fd = r.fds().count() > 0 ? r.fds().take(0) : null;
                r.fds().close();
                return new Region(index, d.flags(), d.size(), d.offset(), fd, chain);
            } catch (VfioUserProtocolException e) {
                r.fds().close();
                throw e;
            }
        }
        throw new VfioUserProtocolException(Errno.EINVAL, "region " + index + " info keeps growing");
    }

    /**
     * An IRQ index as the server describes it.
     *
     * @param index the IRQ index
     * @param flags VFIO_IRQ_INFO_*
     * @param count the number of interrupts
     */
    public record Irq(int index, long flags, long count) {
    }

    /**
     * VFIO_USER_DEVICE_GET_IRQ_INFO.
     *
     * @param index the IRQ index
     * @return its description
     * @throws IOException when the server refuses
     */
    public Irq irqInfo(int index) throws IOException {
        new IrqInfo.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).clear().argsz(IrqInfo.ENCODED_LENGTH).index(index);
        Reply r = call(VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.ENCODED_LENGTH, List.of());
        try (ReceivedFds ignored = r.fds()) {
            IrqInfo.Decoder d = new IrqInfo.Decoder().wrap(r.message(), r.payloadOffset());
            return new Irq((int) d.index(), d.flags(), d.count());
        }
    }

    /**
     * Installs eventfds for interrupts {@code start .. start + eventFds.size() - 1} (DATA_EVENTFD |
     * ACTION_TRIGGER), in batches of the server's {@code max_msg_fds}.
     *
     * @param index the IRQ index
     * @param start the first sub-index
     * @param eventFds the eventfds (they stay owned by the caller)
     * @return how many messages were sent
     * @throws IOException when the server refuses
     */
    public int setIrqEventFds(int index, int start, List<EventFd> eventFds) throws IOException {
        int batch = Math.max(1, server.maxMsgFds());
        int messages = 0;
        for (int from = 0; from < eventFds.size(); from += batch) {
            List<EventFd> part = eventFds.subList(from, Math.min(eventFds.size(), from + batch));
            new IrqSet.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(IrqSet.ENCODED_LENGTH)
                    .flags(IrqSet.DATA_EVENTFD | IrqSet.ACTION_TRIGGER).index(index).start(start + from).count(part.size());
            call(VfioUserCommand.DEVICE_SET_IRQS, IrqSet.ENCODED_LENGTH, part.stream().map(EventFd::owner).toList()).fds().close();
            messages++;
        }
        return messages;
    }

    /**
     * VFIO_USER_DEVICE_SET_IRQS without fds: DATA_NONE (when {@code bools} is null) or DATA_BOOL with one of
     * the actions MASK, UNMASK, TRIGGER.
     *
     * @param index the IRQ index
     * @param action one of {@link IrqSet#ACTION_MASK}, {@link IrqSet#ACTION_UNMASK}, {@link IrqSet#ACTION_TRIGGER}
     * @param start the first sub-index
     * @param count how many
     * @param bools per sub-index selection, or {@code null} for all
     * @throws IOException when the server refuses
     */
    public void setIrqs(int index, int action, int start, int count, byte[] bools) throws IOException {
        long payload = IrqSet.ENCODED_LENGTH + (bools == null ? 0 : bools.length);
        IrqSet.Encoder e = new IrqSet.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(payload)
                .flags((bools == null ? IrqSet.DATA_NONE : IrqSet.DATA_BOOL) | action).index(index).start(start).count(count);
        if (bools != null) {
            MemorySegment.copy(bools, 0, out, WireLayout.NATIVE_U8, e.dataOffset(), bools.length);
        }
        call(VfioUserCommand.DEVICE_SET_IRQS, payload, List.of()).fds().close();
    }

    /**
     * Reads a region (VFIO_USER_REGION_READ), in pieces of the server's {@code max_data_xfer_size}.
     *
     * @param region the region index
     * @param offset the offset in it
     * @param destination where the bytes go
     * @throws IOException when the server refuses
     */
    public void regionRead(int region, long offset, MemorySegment destination) throws IOException {
        long done = 0;
        long total = destination.byteSize();
        while (done < total) {
            long n = Math.min(total - done, server.maxDataXferSize());
            new RegionAccess.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).offset(offset + done).region(region).count(n);
            Reply r = call(VfioUserCommand.REGION_READ, RegionAccess.ENCODED_LENGTH, List.of());
            try (ReceivedFds ignored = r.fds()) {
                RegionAccess.Decoder d = new RegionAccess.Decoder().wrap(r.message(), r.payloadOffset());
                if (d.count() != n) {
                    throw new VfioUserProtocolException(Errno.EIO, "REGION_READ returned " + d.count() + " bytes for " + n);
                }
                MemorySegment.copy(r.message(), d.dataOffset(), destination, done, n);
            }
            done += n;
        }
    }

    /**
     * Writes a region (VFIO_USER_REGION_WRITE), in pieces of the server's {@code max_data_xfer_size}.
     *
     * @param region the region index
     * @param offset the offset in it
     * @param source the bytes
     * @throws IOException when the server refuses
     */
    public void regionWrite(int region, long offset, MemorySegment source) throws IOException {
        long done = 0;
        long total = source.byteSize();
        while (done < total) {
            long n = Math.min(total - done, server.maxDataXferSize());
            RegionAccess.Encoder e = new RegionAccess.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).offset(offset + done)
                    .region(region).count(n);
            MemorySegment.copy(source, done, out, e.dataOffset(), n);
            call(VfioUserCommand.REGION_WRITE, RegionAccess.ENCODED_LENGTH + n, List.of()).fds().close();
            done += n;
        }
    }

    /**
     * VFIO_USER_DEVICE_RESET.
     *
     * @throws IOException when the server refuses
     */
    public void reset() throws IOException {
        call(VfioUserCommand.DEVICE_RESET, 0, List.of()).fds().close();
    }

    private Reply feature(long flags, long data) throws IOException {
        new DeviceFeature.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(DeviceFeature.ENCODED_LENGTH + 4096).flags(flags);
        return call(VfioUserCommand.DEVICE_FEATURE, DeviceFeature.ENCODED_LENGTH + data, List.of());
    }

    private static final long FEATURE_DATA = VfioUserHeader.ENCODED_LENGTH + DeviceFeature.ENCODED_LENGTH;

    /**
     * Probes a device feature (VFIO_DEVICE_FEATURE_PROBE with GET and/or SET).
     *
     * @param feature the feature index
     * @param getSetBits {@link DeviceFeature#GET} and/or {@link DeviceFeature#SET}
     * @return whether the server supports it
     * @throws IOException on errors other than ENOTSUP
     */
    public boolean probeFeature(int feature, long getSetBits) throws IOException {
        try {
            feature(DeviceFeature.PROBE | getSetBits | feature, 0).fds().close();
            return true;
        } catch (VfioUserProtocolException e) {
            if (e.errno() == Errno.ENOTSUP) {
                return false;
            }
            throw e;
        }
    }

    /**
     * GET VFIO_DEVICE_FEATURE_MIGRATION.
     *
     * @return the migration flags, or -1 when the device does not migrate
     * @throws IOException on errors other than ENOTSUP
     */
    public long migrationFlags() throws IOException {
        try {
            Reply r = feature(DeviceFeature.GET | DeviceFeature.MIGRATION, 0);
            try (ReceivedFds ignored = r.fds()) {
                return new MigrationFeature.Decoder().wrap(r.message(), FEATURE_DATA).flags();
            }
        } catch (VfioUserProtocolException e) {
            if (e.errno() == Errno.ENOTSUP) {
                return -1;
            }
            throw e;
        }
    }

    /**
     * GET or SET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE.
     *
     * @param target the state to move to, or -1 to only read the state
     * @return the device state after the command
     * @throws IOException when the server refuses the transition
     */
    public int migrationState(int target) throws IOException {
        long data = 0;
        long flags = DeviceFeature.MIG_DEVICE_STATE | DeviceFeature.GET;
        if (target >= 0) {
            new MigDeviceState.Encoder().wrap(out, FEATURE_DATA).deviceState(target).dataFd(0xFFFF_FFFFL);
            data = MigDeviceState.ENCODED_LENGTH;
            flags = DeviceFeature.MIG_DEVICE_STATE | DeviceFeature.SET;
        }
        Reply r = feature(flags, data);
        try (ReceivedFds ignored = r.fds()) {
            return (int) new MigDeviceState.Decoder().wrap(r.message(), FEATURE_DATA).deviceState();
        }
    }

    /**
     * VFIO_USER_MIG_DATA_READ.
     *
     * @param destination where the bytes go (at most {@code max_data_xfer_size})
     * @return how many bytes came; fewer than asked ends the stream
     * @throws IOException when the server refuses
     */
    public long readMigrationData(MemorySegment destination) throws IOException {
        long size = Math.min(destination.byteSize(), server.maxDataXferSize());
        new MigData.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(MigData.ENCODED_LENGTH + size).size(size);
        Reply r = call(VfioUserCommand.MIG_DATA_READ, MigData.ENCODED_LENGTH, List.of());
        try (ReceivedFds ignored = r.fds()) {
            MigData.Decoder d = new MigData.Decoder().wrap(r.message(), r.payloadOffset());
            if (d.size() > size) {
                throw new VfioUserProtocolException(Errno.EIO, "MIG_DATA_READ returned " + d.size() + " bytes for " + size);
            }
            MemorySegment.copy(r.message(), d.dataOffset(), destination, 0, d.size());
            return d.size();
        }
    }

    /**
     * VFIO_USER_MIG_DATA_WRITE.
     *
     * @param source the bytes (at most {@code max_data_xfer_size})
     * @throws IOException when the server refuses
     */
    public void writeMigrationData(MemorySegment source) throws IOException {
        long size = source.byteSize();
        // The spec makes argsz the largest reply (none comes); libvfio-user refuses an argsz below 8 + size,
        // so the client sends 8 + size, which satisfies both.
        MigData.Encoder e = new MigData.Encoder().wrap(out, VfioUserHeader.ENCODED_LENGTH).argsz(MigData.ENCODED_LENGTH + size).size(size);
        MemorySegment.copy(source, 0, out, e.dataOffset(), size);
        call(VfioUserCommand.MIG_DATA_WRITE, MigData.ENCODED_LENGTH + size, List.of()).fds().close();
    }

    /**
     * SET DMA_LOGGING_START.
     *
     * @param pageSize the tracking page size
     * @param ranges IOVA start and length pairs (empty: everything)
     * @throws IOException when the server refuses
     */
    public void startDmaLogging(long pageSize, List<long[]> ranges) throws IOException {
        DmaLoggingControl.Encoder c = new DmaLoggingControl.Encoder().wrap(out, FEATURE_DATA).pageSize(pageSize).numRanges(ranges.size()).reserved(0);
        DmaLoggingRange.Encoder r = new DmaLoggingRange.Encoder();
        for (int i = 0; i < ranges.size(); i++) {
            r.wrap(out, c.dataOffset() + (long) i * DmaLoggingRange.ENCODED_LENGTH).iova(ranges.get(i)[0]).length(ranges.get(i)[1]);
        }
        feature(DeviceFeature.SET | DeviceFeature.DMA_LOGGING_START,
                DmaLoggingControl.ENCODED_LENGTH + (long) ranges.size() * DmaLoggingRange.ENCODED_LENGTH).fds().close();
    }

    /**
     * SET DMA_LOGGING_STOP.
     *
     * @throws IOException when the server refuses
     */
    public void stopDmaLogging() throws IOException {
        feature(DeviceFeature.SET | DeviceFeature.DMA_LOGGING_STOP, 0).fds().close();
    }

    /**
     * GET DMA_LOGGING_REPORT: the pages written in a range since the last report.
     *
     * @param iova the start
     * @param length the length
     * @param pageSize the bitmap's page size
     * @return the bitmap as u64 words
     * @throws IOException when the server refuses
     */
    public long[] dmaLoggingReport(long iova, long length, long pageSize) throws IOException {
        new DmaLoggingReport.Encoder().wrap(out, FEATURE_DATA).iova(iova).length(length).pageSize(pageSize);
        Reply r = feature(DeviceFeature.GET | DeviceFeature.DMA_LOGGING_REPORT, DmaLoggingReport.ENCODED_LENGTH);
        try (ReceivedFds ignored = r.fds()) {
            long pages = (length + pageSize - 1) / pageSize;
            int words = (int) ((pages + 63) / 64);
            long at = FEATURE_DATA + DmaLoggingReport.ENCODED_LENGTH;
            if (r.message().byteSize() < at + words * 8L) {
                throw new VfioUserProtocolException(Errno.EIO, "DMA_LOGGING_REPORT reply too short for " + words + " words");
            }
            long[] bitmap = new long[words];
            for (int i = 0; i < words; i++) {
                bitmap[i] = r.message().get(WireLayout.NATIVE_U64, at + i * 8L);
            }
            return bitmap;
        }
    }

    /** Closes the connection. */
    @Override
    public void close() {
        channel.close();
        VfioUserChannel t = twin;
        if (t != null) {
            t.close();
            try {
                twinThread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        channel.release();
        arena.close();
    }
}
