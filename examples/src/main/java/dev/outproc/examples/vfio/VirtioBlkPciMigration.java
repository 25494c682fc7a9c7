package dev.outproc.examples.vfio;

import dev.outproc.core.fd.Errno;
import dev.outproc.examples.blk.BlkState;
import dev.outproc.examples.blk.VirtioBlkDevice;
import dev.outproc.migration.handshake.DeviceDescriptor;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.HandshakeEndpoint;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.server.MigrationHandler;
import dev.outproc.vfio.server.MigrationState;
import dev.outproc.vfio.server.PreCopyInfo;
import dev.outproc.vfio.virtio.VirtioPciDevice;
import dev.outproc.vfio.virtio.VirtioPciState;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Migration v2 of virtio-blk over vfio-user ({@link MigrationHandler}): the bytes of MIG_DATA_READ/WRITE are one
 * migration-format stream of the shared format class {@code virtio-spec.org/pci/virtio-blk/state}, version 3
 * (integration.md, "virtio over PCI"): virtio-blk's own sections, written and read by {@link BlkState} as the
 * vhost-user back-end does, plus the transport's section {@code virtio_pci} ({@link VirtioPciState}).
 *
 * <h2 id="pre-copy">PRE_COPY</h2>
 * {@code RUNNING -> PRE_COPY} writes the stream's header while the queues keep running; {@link #preCopyInfo()}
 * reports its bytes not read yet and no dirty bytes. Every section holds state the driver may still change (even
 * the device section carries features and status), and a section id appears at most once in a stream
 * (stream-format.md §4), so none is sent before the stop. {@code PRE_COPY -> STOP_COPY} stops the queues where they
 * stand and writes the device, virtqueues, statistics and {@code virtio_pci} sections and the trailer.
 * {@code STOP -> STOP_COPY} writes everything at once. What PRE_COPY is for here is the guest memory the VMM copies
 * while DMA logging reports what the device writes.
 *
 * <h2 id="resume">Resuming</h2>
 * {@code RESUMING -> STOP} verifies the stream (digests, MAC, trailer) before it looks at any value, then checks it
 * against this device ({@link VirtioBlkDevice#restore}: geometry, read-only; {@link VirtioPciDevice#importState}:
 * queue sizes, vectors, ring addresses inside the DMA space) and against itself (the two queue lists agree). A
 * refused stream is forgotten and the device stays in RESUMING, ready for another one. {@code STOP -> RUNNING}
 * starts the queues where the source stopped them.
 *
 * <p>As with the sample card, an instance built to require agreements refuses a transfer without one (the
 * compatibility handshake on {@code --migration-socket} first).
 */
public final class VirtioBlkPciMigration implements MigrationHandler {
    /** The format version this transport reads and writes: version 2's sections plus {@code virtio_pci}. */
    public static final int FORMAT_VERSION = 3;
    /** The section id of the transport's state in the format class. */
    public static final int VIRTIO_PCI_SECTION = 4;
    /** The implementation id in the registry. */
    public static final String IMPLEMENTATION_ID = "outproc.dev/examples/vfio-user-virtio-blk";
    /** The largest stream a destination takes (a few hundred bytes per queue; far below). */
    private static final int MAX_STREAM_BYTES = 1 << 20;

    private final VirtioPciDevice pci;
    private final VirtioBlkDevice blk;
    private final boolean requireAgreement;
    private volatile HandshakeAgreement saveAgreement;
    private volatile HandshakeAgreement loadAgreement;

    // Saving (under this).
    private final ByteQueue out = new ByteQueue();
    private DeviceStateWriter writer;

    // Resuming (under this).
    private final IncomingState in = new IncomingState(MAX_STREAM_BYTES);

    /**
     * Makes a device migratable and installs the handler in its transport.
     *
     * @param pci the transport
     * @param blk the virtio-blk device it serves
     * @param requireAgreement whether a transfer needs a handshake agreement ({@code --migration-socket})
     * @return the handler
     */
    public static VirtioBlkPciMigration install(VirtioPciDevice pci, VirtioBlkDevice blk, boolean requireAgreement) {
        VirtioBlkPciMigration m = new VirtioBlkPciMigration(pci, blk, requireAgreement);
        pci.setMigration(m);
        return m;
    }

    private VirtioBlkPciMigration(VirtioPciDevice pci, VirtioBlkDevice blk, boolean requireAgreement) {
        if (pci.device() != blk) {
            throw new IllegalArgumentException("the transport serves another device");
        }
        this.pci = pci;
        this.blk = blk;
        this.requireAgreement = requireAgreement;
    }

    /**
     * Takes a handshake agreement: as source it governs the next save, as destination the next load.
     *
     * @param agreed the role and agreement
     */
    public void agreed(HandshakeEndpoint.Agreed agreed) {
        if (agreed.source()) {
            saveAgreement = agreed.agreement();
        } else {
            loadAgreement = agreed.agreement();
        }
    }

    /**
     * Takes a handshake agreement for one role.
     *
     * @param source whether this device is the source
     * @param agreement the agreement
     */
    public void agreed(boolean source, HandshakeAgreement agreement) {
        if (source) {
            saveAgreement = agreement;
        } else {
            loadAgreement = agreement;
        }
    }

    /**
     * {@return the device's descriptor for the handshake: the virtio-blk model in format version 3}
     *
     * @param backing the host-side store
     */
    public DeviceDescriptor descriptor(String backing) {
        return blk.descriptor(IMPLEMENTATION_ID, backing, List.of(FORMAT_VERSION));
    }

    @Override
    public long migrationFlags() {
        return MigrationFeature.STOP_COPY | MigrationFeature.PRE_COPY;
    }

    @Override
    public synchronized void arc(MigrationState from, MigrationState to) throws VfioUserProtocolException {
        try {
            if (to == MigrationState.PRE_COPY) {
                beginSave();
                writer.flush();
                out.markInitial();
            } else if (to == MigrationState.STOP_COPY && from == MigrationState.PRE_COPY) {
                pci.pauseQueues();
                writeState();
            } else if (to == MigrationState.STOP_COPY) {
                beginSave();
                writeState();
            } else if (to == MigrationState.RESUMING) {
                if (loadAgreement == null && requireAgreement) {
                    throw new VfioUserProtocolException(Errno.EPERM, "no migration handshake agreed as destination: run 'migration relay' first");
                }
                pci.pauseQueues();
                forgetLoad();
            } else if (from == MigrationState.RESUMING) {
                load();
            } else if (from.isSaving()) {
                endSave();
            }
            if (to == MigrationState.STOP) {
                pci.pauseQueues();
            } else if (to == MigrationState.RUNNING) {
                pci.resumeQueues();
            }
        } catch (VfioUserProtocolException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            endSave();
            throw new VfioUserProtocolException(Errno.EINVAL, "virtio-blk " + from + " -> " + to + ": " + e.getMessage());
        }
    }

    private void beginSave() throws IOException {
        HandshakeAgreement a = saveAgreement;
        if (a == null && requireAgreement) {
            throw new VfioUserProtocolException(Errno.EPERM, "no migration handshake agreed as source: run 'migration relay' first");
        }
        saveAgreement = null;
        if (a == null) {
            a = HandshakeAgreement.builder(VirtioBlkDevice.MODEL_ID, VirtioBlkDevice.FORMAT_CLASS, FORMAT_VERSION)
                    .implementationId(IMPLEMENTATION_ID).build();
        }
        if (a.formatVersion() != FORMAT_VERSION) {
            throw new VfioUserProtocolException(Errno.EINVAL, "the virtio-pci transport writes format version " + FORMAT_VERSION
                    + ", the agreement says " + a.formatVersion());
        }
        out.clear();
        writer = DeviceStateWriter.open(out, a);
    }

    private void writeState() throws IOException {
        BlkState now = blk.currentState();
        now.writeDevice(writer);
        now.writeQueues(writer);
        now.writeStatistics(writer);
        VirtioPciStateSection.write(pci.exportState(), writer, VIRTIO_PCI_SECTION);
        writer.finish();
    }

    private void endSave() {
        if (writer != null) {
            writer.close();
            writer = null;
        }
        out.clear();
    }

    private void load() throws IOException {
        HandshakeAgreement a = loadAgreement;
        if (a == null) {
            a = HandshakeAgreement.builder(VirtioBlkDevice.MODEL_ID, VirtioBlkDevice.FORMAT_CLASS, FORMAT_VERSION)
                    .implementationId(IMPLEMENTATION_ID).build();
        }
        try {
            VirtioPciState[] transport = new VirtioPciState[1];
            BlkState state;
            try (DeviceStateReader r = DeviceStateReader.open(in.channel(), a)) {
                if (r.header().formatVersion() != FORMAT_VERSION) {
                    throw new IOException("format version " + r.header().formatVersion() + " carries no virtio-pci transport state");
                }
                state = BlkState.readSections(r, (reader, section) -> {
                    if (section.id() == VIRTIO_PCI_SECTION) {
                        transport[0] = VirtioPciStateSection.read(reader);
                    } else {
                        reader.skipSection();
                    }
                });
                r.finish(); // nothing is used before the digests and the trailer are checked
            }
            VirtioPciState t = transport[0];
            if (t == null) {
                throw new IOException("virtio-blk state without its virtio_pci section");
            }
            checkConsistent(state, t);
            blk.restore(state, a.formatVersion());
            pci.importState(t);
            loadAgreement = null;
        } finally {
            forgetLoad();
        }
    }

    /** The virtio-blk view of the queues and the transport's must tell the same story. */
    private static void checkConsistent(BlkState s, VirtioPciState t) throws IOException {
        if (s.queues().size() != t.queues().size()) {
            throw new IOException("virtqueues section of " + s.queues().size() + " queues, virtio_pci of " + t.queues().size());
        }
        if (s.driverFeatures() != t.driverFeatures() || s.deviceStatus() != t.deviceStatus()) {
            throw new IOException("device and virtio_pci sections disagree: features 0x" + Long.toHexString(s.driverFeatures())
                    + "/0x" + Long.toHexString(t.driverFeatures()) + ", status 0x" + Integer.toHexString(s.deviceStatus())
                    + "/0x" + Integer.toHexString(t.deviceStatus()));
        }
        for (int i = 0; i < s.queues().size(); i++) {
            BlkState.Queue b = s.queues().get(i);
            VirtioPciState.Queue p = t.queues().get(i);
            if (p.running() && (b.size() != p.size() || b.nextAvail() != p.nextAvail() || b.nextUsed() != p.nextUsed())) {
                throw new IOException("queue " + i + ": virtqueues section says size " + b.size() + " avail " + b.nextAvail()
                        + " used " + b.nextUsed() + ", virtio_pci says size " + p.size() + " avail " + p.nextAvail() + " used "
                        + p.nextUsed());
            }
        }
    }

    private void forgetLoad() {
        in.clear();
    }

    @Override
    public synchronized long read(MemorySegment destination) {
        return out.take(destination);
    }

    @Override
    public synchronized void write(MemorySegment source) throws VfioUserProtocolException {
        in.append(source);
    }

    @Override
    public synchronized PreCopyInfo preCopyInfo() {
        return new PreCopyInfo(writer == null ? 0 : out.initialLeft(), 0);
    }

    /**
     * Forgets a save or load in progress (VFIO_USER_DEVICE_RESET, client gone; the server calls it). A driver's
     * virtio reset ({@code device_status} 0) does not: in PRE_COPY the stream goes on and its stop carries the reset
     * device section again.
     */
    @Override
    public synchronized void reset() {
        endSave();
        forgetLoad();
    }
}
