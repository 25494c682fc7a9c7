package dev.outproc.vfio.server;

import dev.outproc.core.fd.Errno;
import dev.outproc.core.fd.OwnedFd;
import dev.outproc.core.transport.MessageChannel;
import dev.outproc.core.transport.PeerClosedException;
import dev.outproc.core.transport.ReceivedFds;
import dev.outproc.core.transport.WriteTimeoutException;
import dev.outproc.vfio.connection.VfioUserChannel;
import dev.outproc.vfio.message.Capabilities;
import dev.outproc.vfio.message.DeviceFeature;
import dev.outproc.vfio.message.DeviceInfo;
import dev.outproc.vfio.message.DmaAccess;
import dev.outproc.vfio.message.DmaAccessLayout;
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
import dev.outproc.vfio.message.RegionIoFds;
import dev.outproc.vfio.message.RegionWriteMulti;
import dev.outproc.vfio.message.RegionWriteMultiEntry;
import dev.outproc.vfio.message.Version;
import dev.outproc.vfio.message.VfioUserCommand;
import dev.outproc.vfio.message.VfioUserHeader;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.message.WireLayout;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One client's connection to a {@link VfioUserServer}: everything negotiated or passed on it (limits,
 * DMA windows, eventfds, migration state) lives here and dies with it. The connection thread receives
 * and answers commands in order.
 *
 * <p>The server's own DMA_READ/WRITE commands travel on the twin socket when the client proposed
 * {@code twin_socket} (vfio-user.rst, "Version"): the thread that needs the access sends it there and reads
 * its reply there, one access at a time. Without a twin socket they share the main socket: replies are
 * handed to the device thread waiting for them, and commands that arrive while the connection thread itself
 * waits for such a reply are queued and handled afterwards, in order.
 *
 * <p>Every send has a timeout ({@link ServerOptions#sendTimeoutMillis()}): a client that sends commands and
 * never reads the replies loses this connection once the socket stays full that long.
 */
final class ServerSession implements DmaSpace.MessageDma, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ServerSession.class.getName());

    private final VfioUserDevice device;
    private final ServerOptions options;
    private final VfioUserChannel channel;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment reply;
    private final Interrupts interrupts;
    private final DmaSpace dma;
    private final Capabilities offered;
    private final ArrayDeque<VfioUserChannel.Received> queued = new ArrayDeque<>();
    private final Map<Integer, CompletableFuture<byte[]>> pendingDma = new ConcurrentHashMap<>();
    private final AtomicInteger nextMsgId = new AtomicInteger();
    private final VfioUserHeader.Decoder header = new VfioUserHeader.Decoder();
    private final VfioUserHeader.Encoder replyHeader = new VfioUserHeader.Encoder();
    private final ReentrantLock twinLock = new ReentrantLock();
    private volatile VfioUserChannel twin;
    private volatile Thread loopThread;
    private boolean negotiated;
    private Capabilities client = Capabilities.DEFAULTS;
    private volatile MigrationState migrationState = MigrationState.RUNNING;
    private boolean attached;

    ServerSession(VfioUserDevice device, ServerOptions options, MessageChannel socket) {
        this.device = device;
        this.options = options;
        this.channel = new VfioUserChannel(socket, options.maxMessageBytes(), options.maxMsgFds());
        this.channel.setBodyTimeoutMillis(options.messageTimeoutMillis());
        this.reply = arena.allocate(options.maxMessageBytes(), 8);
        int[] counts = new int[device.irqIndexCount()];
        for (int i = 0; i < counts.length; i++) {
            counts[i] = device.irq(i).count();
        }
        this.interrupts = new Interrupts(counts);
        this.dma = new DmaSpace(options.maxDmaMaps(), options.maxDmaWindowBytes(), this);
        Capabilities.Builder caps = Capabilities.builder().maxMsgFds(options.maxMsgFds()).maxDataXferSize(options.maxDataXferSize())
                .maxDmaMaps(options.maxDmaMaps()).pgsizes(4096).writeMultiple(true);
        if (device.migration() != null) {
            caps.migration(4096, 0);
        }
        this.offered = caps.build();
    }

    /** {@return the interrupts of this connection} */
    Interrupts interrupts() {
        return interrupts;
    }

    /**
     * {@return the device's PRE_COPY estimates}
     *
     * @throws IllegalStateException outside PRE_COPY (the kernel answers EINVAL there)
     */
    PreCopyInfo preCopyInfo() {
        MigrationHandler h = device.migration();
        MigrationState state = migrationState;
        if (h == null || (state != MigrationState.PRE_COPY && state != MigrationState.PRE_COPY_P2P)) {
            throw new IllegalStateException("PRE_COPY estimates exist only in PRE_COPY, state=" + state);
        }
        return h.preCopyInfo();
    }

    /** {@return the DMA space of this connection} */
    DmaSpace dma() {
        return dma;
    }

    void run() {
        loopThread = Thread.currentThread();
        try {
            if (options.sendTimeoutMillis() > 0) {
                channel.channel().setWriteTimeoutMillis(options.sendTimeoutMillis());
            }
            while (true) {
                VfioUserChannel.Received r = queued.poll();
                if (r == null) {
                    r = channel.receive();
                }
                dispatch(r);
            }
        } catch (PeerClosedException e) {
            LOG.log(System.Logger.Level.DEBUG, "client closed the connection");
        } catch (VfioUserChannel.HeaderException e) {
            VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(e.header(), 0);
            LOG.log(System.Logger.Level.WARNING, "closing the connection: " + e.getMessage());
            if (!h.isReply() && !h.noReply()) {
                try {
                    channel.sendError(h.msgId(), h.command(), e.errno());
                } catch (IOException ignored) {
                    // The connection closes anyway.
                }
            }
        } catch (WriteTimeoutException e) {
            LOG.log(System.Logger.Level.WARNING, "closing the connection: the client has not read for " + options.sendTimeoutMillis()
                    + " ms (send timeout); " + e.getMessage());
        } catch (IOException e) {
            if (channel.isOpen()) {
                LOG.log(System.Logger.Level.WARNING, "closing the connection: " + e.getMessage());
            }
        }
    }

    private void dispatch(VfioUserChannel.Received r) throws IOException {
        MemorySegment m = r.message();
        header.wrap(m, 0);
        try (ReceivedFds fds = r.fds()) {
            if (header.isReply()) {
                completeDma(m);
                return;
            }
            int msgId = header.msgId();
            int command = header.command();
            boolean noReply = header.noReply();
            try {
                if (r.droppedFds() > 0) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "message carried " + (r.fds().count() + r.droppedFds())
                            + " fds, at most " + options.maxMsgFds());
                }
                VfioUserCommand c = MessageValidator.checkCommand(m, 0, fds.count(), VfioUserCommand.Direction.CLIENT_TO_SERVER,
                        options.maxDataXferSize(), options.maxMsgFds());
                if (!negotiated && c != VfioUserCommand.VERSION) {
                    throw new VfioUserProtocolException(Errno.EINVAL, c + " before VERSION");
                }
                long payload = handle(c, m, fds, msgId);
                if (noReply) {
                    replyFds = List.of();
                } else {
                    replyHeader.wrap(reply, 0).reply(msgId, command, payload);
                    List<OwnedFd> fdsOut = replyFds;
                    replyFds = List.of();
                    channel.send(reply.asSlice(0, VfioUserHeader.ENCODED_LENGTH + payload), fdsOut);
                }
                if (twinPeer != null) {
                    // The client's end of the twin socket went out with the VERSION reply (or not at all).
                    twinPeer.close();
                    twinPeer = null;
                }
            } catch (VfioUserProtocolException e) {
                LOG.log(System.Logger.Level.DEBUG, () -> "command " + command + " refused: " + e.getMessage());
                replyFds = List.of();
                if (!noReply) {
                    channel.sendError(msgId, command, e.errno());
                }
                if (command == VfioUserCommand.VERSION.code() && e.errno() == Errno.ENOTSUP) {
                    throw new dev.outproc.core.transport.TransportException("client speaks an unsupported major version");
                }
            }
        }
    }

    private List<OwnedFd> replyFds = List.of();
    /** The client's end of the twin socket while the VERSION reply that carries it is being sent. */
    private OwnedFd twinPeer;

    /** Handles one checked command; returns the reply payload size written at {@code reply + 16}. */
    private long handle(VfioUserCommand c, MemorySegment m, ReceivedFds fds, int msgId) throws IOException {
        long p = VfioUserHeader.ENCODED_LENGTH;
        long payload = header.size() - p;
        MemorySegment out = reply;
        return switch (c) {
            case VERSION -> version(m, payload);
            case DMA_MAP -> {
                DmaMap.Decoder d = new DmaMap.Decoder().wrap(m, p);
                dma.map(d.address(), d.size(), (int) d.flags(), fds.count() == 1 ? fds.all().get(0) : null, d.offset());
                yield 0;
            }
            case DMA_UNMAP -> {
                DmaUnmap.Decoder d = new DmaUnmap.Decoder().wrap(m, p);
                if ((d.flags() & DmaUnmap.FLAG_ALL) != 0) {
                    dma.unmapAll();
                } else {
                    dma.unmap(d.address(), d.size());
                }
                MemorySegment.copy(m, p, out, p, DmaUnmap.ENCODED_LENGTH);
                new DmaUnmap.Encoder().wrap(out, p).argsz(DmaUnmap.ENCODED_LENGTH);
                yield DmaUnmap.ENCODED_LENGTH;
            }
            case DEVICE_GET_INFO -> {
                argszAtLeast(c, new DeviceInfo.Decoder().wrap(m, p).argsz(), DeviceInfo.ENCODED_LENGTH);
                new DeviceInfo.Encoder().wrap(out, p).argsz(DeviceInfo.ENCODED_LENGTH)
                        .flags(DeviceInfo.FLAG_RESET | (device.isPci() ? DeviceInfo.FLAG_PCI : 0))
                        .numRegions(device.regionCount()).numIrqs(device.irqIndexCount());
                yield DeviceInfo.ENCODED_LENGTH;
            }
            case DEVICE_GET_REGION_INFO -> regionInfo(m, p, out);
            case DEVICE_GET_REGION_IO_FDS -> {
                RegionIoFds.Decoder d = new RegionIoFds.Decoder().wrap(m, p);
                regionIndex(d.index());
                argszAtLeast(c, d.argsz(), RegionIoFds.ENCODED_LENGTH);
                new RegionIoFds.Encoder().wrap(out, p).argsz(RegionIoFds.ENCODED_LENGTH).flags(0).index(d.index()).count(0);
                yield RegionIoFds.ENCODED_LENGTH;
            }
            case DEVICE_GET_IRQ_INFO -> {
                IrqInfo.Decoder d = new IrqInfo.Decoder().wrap(m, p);
                argszAtLeast(c, d.argsz(), IrqInfo.ENCODED_LENGTH);
                if (d.index() >= device.irqIndexCount()) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "IRQ index " + d.index() + " beyond " + device.irqIndexCount());
                }
                IrqDescription irq = device.irq((int) d.index());
                new IrqInfo.Encoder().wrap(out, p).argsz(IrqInfo.ENCODED_LENGTH).flags(irq.flags()).index(d.index()).count(irq.count());
                yield IrqInfo.ENCODED_LENGTH;
            }
            case DEVICE_SET_IRQS -> {
                interrupts.setIrqs(new IrqSet.Decoder().wrap(m, p), m, fds);
                yield 0;
            }
            case REGION_READ -> {
                RegionAccess.Decoder d = new RegionAccess.Decoder().wrap(m, p);
                int index = checkAccess(d.region(), d.offset(), d.count(), RegionInfo.FLAG_READ);
                MemorySegment.copy(m, p, out, p, RegionAccess.ENCODED_LENGTH);
                device.regionRead(index, d.offset(), out.asSlice(p + RegionAccess.ENCODED_LENGTH, d.count()));
                yield RegionAccess.ENCODED_LENGTH + d.count();
            }
            case REGION_WRITE -> {
                RegionAccess.Decoder d = new RegionAccess.Decoder().wrap(m, p);
                int index = checkAccess(d.region(), d.offset(), d.count(), RegionInfo.FLAG_WRITE);
                device.regionWrite(index, d.offset(), m.asSlice(d.dataOffset(), d.count()));
                MemorySegment.copy(m, p, out, p, RegionAccess.ENCODED_LENGTH);
                yield RegionAccess.ENCODED_LENGTH;
            }
            case DEVICE_RESET -> {
                device.reset();
                resetMigration();
                dma.stopLogging();
                yield 0;
            }
            case REGION_WRITE_MULTI -> {
                long count = new RegionWriteMulti.Decoder().wrap(m, p).wrCnt();
                RegionWriteMultiEntry.Decoder e = new RegionWriteMultiEntry.Decoder();
                for (int i = 0; i < count; i++) {
                    long entry = p + RegionWriteMulti.ENCODED_LENGTH + (long) i * RegionWriteMultiEntry.ENCODED_LENGTH;
                    e.wrap(m, entry);
                    int index = checkAccess(e.region(), e.offset(), e.count(), RegionInfo.FLAG_WRITE);
                    device.regionWrite(index, e.offset(), m.asSlice(entry + RegionWriteMultiEntry.DATA_OFFSET, e.count()));
                }
                new RegionWriteMulti.Encoder().wrap(out, p).wrCnt(count);
                yield RegionWriteMulti.ENCODED_LENGTH;
            }
            case DEVICE_FEATURE -> feature(m, p, payload, out);
            case MIG_DATA_READ -> {
                MigrationHandler h = migration();
                if (!migrationState.isSaving()) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "MIG_DATA_READ in state " + migrationState);
                }
                long size = new MigData.Decoder().wrap(m, p).size();
                long n = h.read(out.asSlice(p + MigData.ENCODED_LENGTH, size));
                if (n < 0 || n > size) {
                    throw new VfioUserProtocolException(Errno.EIO, "device produced " + n + " migration bytes for " + size);
                }
                new MigData.Encoder().wrap(out, p).argsz(MigData.ENCODED_LENGTH + n).size(n);
                yield MigData.ENCODED_LENGTH + n;
            }
            case MIG_DATA_WRITE -> {
                MigrationHandler h = migration();
                if (migrationState != MigrationState.RESUMING) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "MIG_DATA_WRITE in state " + migrationState);
                }
                MigData.Decoder d = new MigData.Decoder().wrap(m, p);
                h.write(m.asSlice(d.dataOffset(), d.size()));
                yield 0;
            }
            case DMA_READ, DMA_WRITE, DIRTY_PAGES_RETIRED -> throw new IllegalStateException("refused by the syntax layer: " + c);
        };
    }

    private long version(MemorySegment m, long payload) throws VfioUserProtocolException {
        if (negotiated) {
            throw new VfioUserProtocolException(Errno.EINVAL, "VERSION sent twice");
        }
        Version.Decoder v = new Version.Decoder().wrap(m, VfioUserHeader.ENCODED_LENGTH);
        if (v.major() != Version.SUPPORTED_MAJOR) {
            throw new VfioUserProtocolException(Errno.ENOTSUP, "unsupported major version " + v.major());
        }
        Capabilities proposed = Capabilities.parse(m, v.dataOffset(), payload - Version.ENCODED_LENGTH);
        client = proposed;
        Capabilities answer = offered.answerTo(proposed);
        if (options.twinSocket() && proposed.twinSocketSupported()) {
            answer = answer.withTwinSocket(0);
            openTwinSocket();
        }
        byte[] json = answer.toJson();
        long at = VfioUserHeader.ENCODED_LENGTH;
        new Version.Encoder().wrap(reply, at).major(Version.SUPPORTED_MAJOR).minor(Math.min(v.minor(), Version.SUPPORTED_MINOR));
        MemorySegment.copy(json, 0, reply, WireLayout.NATIVE_U8, at + Version.ENCODED_LENGTH, json.length);
        reply.set(WireLayout.NATIVE_U8, at + Version.ENCODED_LENGTH + json.length, (byte) 0);
        negotiated = true;
        device.attach(new DeviceContext(dma, interrupts));
        attached = true;
        return Version.ENCODED_LENGTH + json.length + 1L;
    }

    /**
     * Makes the twin socket pair: this end carries the server's DMA commands; the client's end goes out as
     * fd 0 of the VERSION reply and is closed here once sent.
     */
    private void openTwinSocket() throws VfioUserProtocolException {
        MessageChannel.Pair pair;
        try {
            pair = MessageChannel.pair();
        } catch (IOException e) {
            throw new VfioUserProtocolException(Errno.ENOMEM, "cannot create the twin socket: " + e.getMessage());
        }
        VfioUserChannel t = new VfioUserChannel(pair.channel(), options.maxMessageBytes(), 0);
        try {
            if (options.sendTimeoutMillis() > 0) {
                pair.channel().setWriteTimeoutMillis(options.sendTimeoutMillis());
            }
            if (options.dmaReplyTimeoutMillis() > 0) {
                pair.channel().setReadTimeoutMillis((int) Math.min(Integer.MAX_VALUE, options.dmaReplyTimeoutMillis()));
            }
        } catch (IOException e) {
            t.close();
            t.release();
            pair.peerFd().close();
            throw new VfioUserProtocolException(Errno.EIO, "cannot set up the twin socket: " + e.getMessage());
        }
        twin = t;
        twinPeer = pair.peerFd();
        replyFds = List.of(twinPeer);
    }

    /** {@return whether twin-socket mode was negotiated on this connection} */
    boolean twinSocket() {
        return twin != null;
    }

    private long regionInfo(MemorySegment m, long p, MemorySegment out) throws VfioUserProtocolException {
        RegionInfo.Decoder d = new RegionInfo.Decoder().wrap(m, p);
        int index = regionIndex(d.index());
        argszAtLeast(VfioUserCommand.DEVICE_GET_REGION_INFO, d.argsz(), RegionInfo.ENCODED_LENGTH);
        RegionDescription r = device.region(index);
        int flags = r.flags() & (RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE);
        if (r.mmapFd() != null) {
            flags |= RegionInfo.FLAG_MMAP;
        }
        int capsBytes = 0;
        if (r.sparseAreas() != null) {
            capsBytes += RegionCapabilities.sparseMmapLength(r.sparseAreas().size());
        }
        if (r.type() >= 0) {
            capsBytes += 16;
        }
        long full = RegionInfo.ENCODED_LENGTH + capsBytes;
        boolean withCaps = capsBytes > 0 && d.argsz() >= full;
        if (withCaps) {
            // Only with the chain: Linux sets CAPS with cap_offset 0 in a short reply, but QEMU's vfio-user
            // client then refuses the reply (cap_offset below 32); libvfio-user sets it only with the chain.
            flags |= RegionInfo.FLAG_CAPS;
        }
        new RegionInfo.Encoder().wrap(out, p).argsz(full).flags(flags).index(index)
                .capOffset(withCaps ? RegionInfo.ENCODED_LENGTH : 0).size(r.sizeBytes()).offset(r.mmapOffset());
        if (withCaps) {
            long at = RegionInfo.ENCODED_LENGTH;
            if (r.sparseAreas() != null) {
                long next = r.type() >= 0 ? at + RegionCapabilities.sparseMmapLength(r.sparseAreas().size()) : 0;
                RegionCapabilities.writeSparseMmap(out, p + at, next, r.sparseAreas());
                at += RegionCapabilities.sparseMmapLength(r.sparseAreas().size());
            }
            if (r.type() >= 0) {
                RegionCapabilities.writeType(out, p + at, 0, r.type(), r.subtype());
            }
        }
        if (r.mmapFd() != null && (withCaps || capsBytes == 0)) {
            // A reply cut short for lack of argsz carries no fd: libvfio-user's client asks again with the full
            // argsz and refuses an fd it did not expect (EFAULT) on the short one.
            replyFds = List.of(r.mmapFd());
        }
        return withCaps ? full : RegionInfo.ENCODED_LENGTH;
    }

    private long feature(MemorySegment m, long p, long payload, MemorySegment out) throws IOException {
        DeviceFeature.Decoder f = new DeviceFeature.Decoder().wrap(m, p);
        long flags = f.flags();
        int feature = (int) (flags & DeviceFeature.FEATURE_MASK);
        boolean get = (flags & DeviceFeature.GET) != 0;
        boolean set = (flags & DeviceFeature.SET) != 0;
        boolean probe = (flags & DeviceFeature.PROBE) != 0;
        MigrationHandler h = device.migration();
        boolean supported = switch (feature) {
            case DeviceFeature.MIGRATION -> h != null && !set;
            case DeviceFeature.MIG_DEVICE_STATE -> h != null;
            case DeviceFeature.DMA_LOGGING_START, DeviceFeature.DMA_LOGGING_STOP -> !get;
            case DeviceFeature.DMA_LOGGING_REPORT -> !set;
            default -> false;
        };
        if (!supported) {
            throw new VfioUserProtocolException(Errno.ENOTSUP, "device feature " + feature + (get ? " GET" : "") + (set ? " SET" : "")
                    + " is not supported");
        }
        long d = p + DeviceFeature.ENCODED_LENGTH;
        MemorySegment.copy(m, p, out, p, DeviceFeature.ENCODED_LENGTH);
        if (probe) {
            new DeviceFeature.Encoder().wrap(out, p).argsz(DeviceFeature.ENCODED_LENGTH);
            return DeviceFeature.ENCODED_LENGTH;
        }
        long data;
        switch (feature) {
            case DeviceFeature.MIGRATION -> {
                new MigrationFeature.Encoder().wrap(out, d).flags(h.migrationFlags());
                data = MigrationFeature.ENCODED_LENGTH;
            }
            case DeviceFeature.MIG_DEVICE_STATE -> {
                if (set) {
                    MigrationState target = MigrationState.of(new MigDeviceState.Decoder().wrap(m, d).deviceState());
                    if (target == null) {
                        throw new VfioUserProtocolException(Errno.EINVAL, "unknown migration state "
                                + new MigDeviceState.Decoder().wrap(m, d).deviceState());
                    }
                    moveTo(h, target);
                }
                new MigDeviceState.Encoder().wrap(out, d).deviceState(migrationState.code()).dataFd(0xFFFF_FFFFL);
                data = MigDeviceState.ENCODED_LENGTH;
            }
            case DeviceFeature.DMA_LOGGING_START -> {
                DmaLoggingControl.Decoder ctl = new DmaLoggingControl.Decoder().wrap(m, d);
                List<long[]> ranges = new ArrayList<>();
                DmaLoggingRange.Decoder range = new DmaLoggingRange.Decoder();
                for (int i = 0; i < ctl.numRanges(); i++) {
                    range.wrap(m, ctl.dataOffset() + (long) i * DmaLoggingRange.ENCODED_LENGTH);
                    ranges.add(new long[] {range.iova(), range.length()});
                }
                // vfio-user.rst: page_size is a hint; the device picks what it can track and returns it. We track
                // any power of two from 4 KiB up, so a smaller hint becomes 4 KiB.
                long pageSize = ctl.pageSize() != 0 && Long.compareUnsigned(ctl.pageSize(), 4096) < 0 ? 4096 : ctl.pageSize();
                dma.startLogging(pageSize, ranges);
                data = payload - DeviceFeature.ENCODED_LENGTH;
                MemorySegment.copy(m, d, out, d, data);
                new DmaLoggingControl.Encoder().wrap(out, d).pageSize(pageSize);
            }
            case DeviceFeature.DMA_LOGGING_STOP -> {
                dma.stopLogging();
                data = payload - DeviceFeature.ENCODED_LENGTH;
                MemorySegment.copy(m, d, out, d, data);
            }
            default -> {
                DmaLoggingReport.Decoder rep = new DmaLoggingReport.Decoder().wrap(m, d);
                long pageSize = rep.pageSize();
                if (pageSize == 0 || Long.bitCount(pageSize) != 1 || rep.length() == 0) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_LOGGING_REPORT page_size=" + pageSize + " length=" + rep.length());
                }
                long pages = (rep.length() + pageSize - 1) / pageSize;
                long bitmapBytes = ((pages + 63) / 64) * 8;
                long need = DeviceFeature.ENCODED_LENGTH + DmaLoggingReport.ENCODED_LENGTH + bitmapBytes;
                if (VfioUserHeader.ENCODED_LENGTH + need > reply.byteSize()) {
                    throw new VfioUserProtocolException(Errno.E2BIG, "DMA_LOGGING_REPORT bitmap of " + bitmapBytes + " bytes too large");
                }
                MemorySegment.copy(m, d, out, d, DmaLoggingReport.ENCODED_LENGTH);
                dma.report(rep.iova(), rep.length(), pageSize, out.asSlice(d + DmaLoggingReport.ENCODED_LENGTH, bitmapBytes));
                data = DmaLoggingReport.ENCODED_LENGTH + bitmapBytes;
            }
        }
        new DeviceFeature.Encoder().wrap(out, p).argsz(DeviceFeature.ENCODED_LENGTH + data);
        return DeviceFeature.ENCODED_LENGTH + data;
    }

    private void moveTo(MigrationHandler h, MigrationState target) throws VfioUserProtocolException {
        long flags = h.migrationFlags();
        while (migrationState != target) {
            MigrationState next = MigrationStateMachine.next(migrationState, target, flags);
            try {
                h.arc(migrationState, next);
            } catch (VfioUserProtocolException refused) {
                // A refused arc leaves the device where it was (vfio-user.rst: ERROR only when the server cannot
                // restore any valid state); the client gets the errno and may ask for the state.
                throw refused;
            } catch (RuntimeException e) {
                String arc = migrationState + " -> " + next;
                migrationState = MigrationState.ERROR;
                throw new VfioUserProtocolException(Errno.EIO, "migration arc " + arc + " failed: " + e);
            }
            migrationState = next;
        }
    }

    /** A function reset or the client's departure: back to RUNNING, and the device forgets any stream in progress. */
    private void resetMigration() {
        migrationState = MigrationState.RUNNING;
        MigrationHandler h = device.migration();
        if (h != null) {
            h.reset();
        }
    }

    private MigrationHandler migration() throws VfioUserProtocolException {
        MigrationHandler h = device.migration();
        if (h == null) {
            throw new VfioUserProtocolException(Errno.ENOTSUP, "the device does not migrate");
        }
        return h;
    }

    private int regionIndex(long index) throws VfioUserProtocolException {
        if (index >= device.regionCount()) {
            throw new VfioUserProtocolException(Errno.EINVAL, "region index " + index + " beyond " + device.regionCount());
        }
        return (int) index;
    }

    private int checkAccess(long region, long offset, long count, int flag) throws VfioUserProtocolException {
        int index = regionIndex(region);
        RegionDescription r = device.region(index);
        if ((r.flags() & flag) == 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "region " + index + " does not allow "
                    + (flag == RegionInfo.FLAG_READ ? "reads" : "writes"));
        }
        if (Long.compareUnsigned(offset, r.sizeBytes()) > 0 || Long.compareUnsigned(count, r.sizeBytes() - offset) > 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "access 0x" + Long.toHexString(offset) + "+" + count
                    + " outside region " + index + " of 0x" + Long.toHexString(r.sizeBytes()) + " bytes");
        }
        return index;
    }

    private static void argszAtLeast(VfioUserCommand c, long argsz, long min) throws VfioUserProtocolException {
        if (argsz < min) {
            throw new VfioUserProtocolException(Errno.EINVAL, c + " argsz " + argsz + " below " + min);
        }
    }

    // ---- server-initiated DMA over messages ----

    @Override
    public void dmaRead(long address, MemorySegment destination) throws IOException {
        long count = destination.byteSize();
        checkTransfer(count);
        try (Arena a = Arena.ofConfined()) {
            int id = nextMsgId.getAndIncrement() & 0xFFFF;
            MemorySegment msg = a.allocate(VfioUserHeader.ENCODED_LENGTH + DmaAccess.ENCODED_LENGTH);
            new VfioUserHeader.Encoder().wrap(msg, 0).command(id, VfioUserCommand.DMA_READ, DmaAccess.ENCODED_LENGTH, false);
            new DmaAccess.Encoder().wrap(msg, VfioUserHeader.ENCODED_LENGTH).address(address).count(count);
            byte[] payload = roundTrip(id, msg);
            int dataAt = options.dmaLayout().dataOffset();
            if (payload.length < dataAt + count) {
                throw new VfioUserProtocolException(Errno.EIO, "DMA_READ reply of " + payload.length + " bytes for " + count);
            }
            MemorySegment.copy(payload, dataAt, destination, WireLayout.NATIVE_U8, 0, (int) count);
        }
    }

    @Override
    public void dmaWrite(long address, MemorySegment source) throws IOException {
        long count = source.byteSize();
        checkTransfer(count);
        try (Arena a = Arena.ofConfined()) {
            int id = nextMsgId.getAndIncrement() & 0xFFFF;
            long payload = DmaAccess.ENCODED_LENGTH + count;
            MemorySegment msg = a.allocate(VfioUserHeader.ENCODED_LENGTH + payload);
            new VfioUserHeader.Encoder().wrap(msg, 0).command(id, VfioUserCommand.DMA_WRITE, payload, false);
            long p = VfioUserHeader.ENCODED_LENGTH;
            if (options.dmaLayout() == DmaAccessLayout.QEMU) {
                msg.set(WireLayout.NATIVE_U64, p, address);
                msg.set(WireLayout.NATIVE_U32, p + 8, (int) count);
            } else {
                new DmaAccess.Encoder().wrap(msg, p).address(address).count(count);
            }
            MemorySegment.copy(source, 0, msg, p + options.dmaLayout().dataOffset(), count);
            roundTrip(id, msg);
        }
    }

    private void checkTransfer(long count) throws VfioUserProtocolException {
        if (count > client.maxDataXferSize()) {
            throw new VfioUserProtocolException(Errno.E2BIG, "DMA transfer of " + count + " bytes exceeds the client's max_data_xfer_size "
                    + client.maxDataXferSize());
        }
    }

    private byte[] roundTrip(int id, MemorySegment msg) throws IOException {
        VfioUserChannel t = twin;
        if (t != null) {
            return twinRoundTrip(t, id, msg);
        }
        CompletableFuture<byte[]> result = new CompletableFuture<>();
        pendingDma.put(id, result);
        try {
            channel.send(msg);
            if (Thread.currentThread() == loopThread) {
                while (!result.isDone()) {
                    VfioUserChannel.Received r = channel.receive();
                    header.wrap(r.message(), 0);
                    if (header.isReply()) {
                        try (ReceivedFds ignored = r.fds()) {
                            completeDma(r.message());
                        }
                    } else {
                        queued.add(copy(r));
                    }
                }
            }
            return result.get(options.dmaReplyTimeoutMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for a DMA reply", e);
        } catch (TimeoutException e) {
            throw new VfioUserProtocolException(Errno.ETIMEDOUT, "no reply to DMA command " + id);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException(e.getCause());
        } finally {
            pendingDma.remove(id);
        }
    }

    /**
     * One DMA command on the twin socket: sent, then its reply read there by this thread. Accesses from
     * several device threads take turns; a late reply to an access that timed out is skipped by its msg_id.
     */
    private byte[] twinRoundTrip(VfioUserChannel t, int id, MemorySegment msg) throws IOException {
        twinLock.lock();
        try {
            try {
                t.send(msg);
            } catch (IOException e) {
                throw twinOutOfStep(t, "DMA command " + id + " could not be sent whole on the twin socket: " + e.getMessage());
            }
            while (true) {
                VfioUserChannel.Received r;
                try {
                    r = t.receive();
                } catch (dev.outproc.core.transport.ReadTimeoutException e) {
                    if (e.receivedBytes() == 0) {
                        // Nothing of a reply arrived: the socket is still at a message boundary, a late reply is skipped.
                        throw new VfioUserProtocolException(Errno.ETIMEDOUT, "no reply to DMA command " + id
                                + " on the twin socket: " + e.getMessage());
                    }
                    throw twinOutOfStep(t, "a reply to DMA command " + id + " stopped partway: " + e.getMessage());
                } catch (IOException e) {
                    // An invalid header (its body is not read), a reply that stopped partway, a closed socket.
                    throw twinOutOfStep(t, "twin socket: " + e.getMessage());
                }
                try (ReceivedFds ignored = r.fds()) {
                    VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(r.message(), 0);
                    if (!h.isReply()) {
                        throw new VfioUserProtocolException(Errno.EINVAL, "command " + h.command()
                                + " from the client on the twin socket, which carries only the server's commands");
                    }
                    if (h.msgId() != id) {
                        LOG.log(System.Logger.Level.WARNING, "skipped a late reply on the twin socket, msg_id=" + h.msgId());
                        continue;
                    }
                    return dmaReplyPayload(r.message());
                }
            }
        } finally {
            twinLock.unlock();
        }
    }

    /**
     * The twin socket no longer sits at a message boundary (a command sent in part, a reply read in part, an
     * invalid header): nothing more can be read from it safely. It is closed, and so is the connection, since
     * the device's DMA cannot go on; the device's access fails with EIO.
     */
    private VfioUserProtocolException twinOutOfStep(VfioUserChannel t, String why) {
        LOG.log(System.Logger.Level.WARNING, "closing the connection: " + why);
        t.close();
        channel.channel().shutdown();
        return new VfioUserProtocolException(Errno.EIO, why);
    }

    private static VfioUserChannel.Received copy(VfioUserChannel.Received r) {
        MemorySegment copy = Arena.ofAuto().allocate(r.message().byteSize(), 8);
        copy.copyFrom(r.message());
        return new VfioUserChannel.Received(copy, r.fds(), r.droppedFds());
    }

    private void completeDma(MemorySegment m) {
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(m, 0);
        CompletableFuture<byte[]> f = pendingDma.get(h.msgId());
        if (f == null) {
            LOG.log(System.Logger.Level.WARNING, "unexpected reply, msg_id=" + h.msgId() + " command=" + h.command());
            return;
        }
        try {
            f.complete(dmaReplyPayload(m));
        } catch (VfioUserProtocolException e) {
            f.completeExceptionally(e);
        }
    }

    /** Checks a reply to one of our DMA commands; returns a copy of its payload. */
    private static byte[] dmaReplyPayload(MemorySegment m) throws VfioUserProtocolException {
        VfioUserHeader.Decoder h = new VfioUserHeader.Decoder().wrap(m, 0);
        if (h.isError()) {
            throw new VfioUserProtocolException(h.error() == 0 ? Errno.EIO : (int) h.error(),
                    "client refused DMA command " + h.command() + ", errno=" + h.error());
        }
        VfioUserCommand answered = VfioUserCommand.of(h.command());
        if (answered != VfioUserCommand.DMA_READ && answered != VfioUserCommand.DMA_WRITE) {
            throw new VfioUserProtocolException(Errno.EINVAL, "reply to command " + h.command() + " the server never sent");
        }
        MessageValidator.checkReply(m, 0, answered);
        return m.asSlice(VfioUserHeader.ENCODED_LENGTH).toArray(WireLayout.NATIVE_U8);
    }

    /** Closes the connection from another thread; {@link #run} returns. */
    void disconnect() {
        channel.close();
        VfioUserChannel t = twin;
        if (t != null) {
            t.close();
        }
    }

    /** Ends the session: unmaps every window, closes every fd the client passed, resets the device. */
    @Override
    public void close() {
        channel.close();
        VfioUserChannel t = twin;
        if (t != null) {
            t.close();
        }
        if (twinPeer != null) {
            twinPeer.close();
            twinPeer = null;
        }
        for (CompletableFuture<byte[]> f : pendingDma.values()) {
            f.completeExceptionally(new java.io.IOException("client went"));
        }
        for (VfioUserChannel.Received r : queued) {
            r.fds().close();
        }
        queued.clear();
        if (attached) {
            device.detach();
        }
        dma.stopLogging();
        dma.unmapAll();
        interrupts.closeAll();
        device.reset();
        resetMigration();
        channel.release();
        if (t != null) {
            twinLock.lock();
            try {
                t.release();
            } finally {
                twinLock.unlock();
            }
        }
        arena.close();
    }
}
