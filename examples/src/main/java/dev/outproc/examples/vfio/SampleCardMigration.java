package dev.outproc.examples.vfio;

import dev.outproc.core.fd.Errno;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.handshake.HandshakeEndpoint;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.vfio.message.MigrationFeature;
import dev.outproc.vfio.message.VfioUserProtocolException;
import dev.outproc.vfio.server.MigrationHandler;
import dev.outproc.vfio.server.MigrationState;
import dev.outproc.vfio.server.PreCopyInfo;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The sample card's migration v2 ({@link MigrationHandler}): the bytes of MIG_DATA_READ/WRITE are one
 * migration-format stream ({@link SampleCardState}), written by {@link DeviceStateWriter} and checked by
 * {@link dev.outproc.migration.stream.DeviceStateReader} as the vhost-user devices do.
 *
 * <h2 id="pre-copy">PRE_COPY</h2>
 * {@code RUNNING -> PRE_COPY} writes the stream's header and BAR2 as it is (the initial part) while the card keeps
 * running; MIG_DATA_READ takes it and then reads short (the temporary end of the stream). {@link #preCopyInfo()}
 * reports the initial bytes not read yet and, as dirty bytes, the BAR2 pages that changed since. {@code PRE_COPY ->
 * STOP_COPY} writes those pages, the registers and the trailer; a save without PRE_COPY ({@code STOP -> STOP_COPY})
 * writes BAR2 and the registers.
 *
 * <h2 id="handshake">Agreements</h2>
 * With a migration endpoint ({@code --migration-socket}) the card takes part in the compatibility handshake and
 * insists on it: a save needs a source agreement, a load a destination agreement, each used once, and a transfer
 * without one is refused before any byte moves. Without an endpoint no handshake can happen: the stream is then
 * the unattested form (stream-format.md §7.5: digests, the model and format class checked by the reader).
 */
final class SampleCardMigration implements MigrationHandler {
    private final SampleCard card;
    private final boolean requireAgreement;
    private volatile HandshakeAgreement saveAgreement;
    private volatile HandshakeAgreement loadAgreement;

    /** Saving: the stream produced and not read yet. */
    private final ByteQueue out = new ByteQueue();
    private DeviceStateWriter writer;
    private MemorySegment sent;
    private boolean preCopy;

    /** Resuming: the bytes written so far. */
    private final IncomingState in;

    SampleCardMigration(SampleCard card, boolean requireAgreement) {
        this.card = card;
        this.requireAgreement = requireAgreement;
        // The largest stream a destination accepts: BAR2 twice (memory and every page changed) and room for the rest.
        this.in = new IncomingState(2 * card.bar2Bytes() + 64 * 1024);
    }

    /**
     * Takes a handshake agreement: as source it governs the next save, as destination the next load.
     *
     * @param agreed the role and agreement
     */
    void agreed(HandshakeEndpoint.Agreed agreed) {
        if (agreed.source()) {
            saveAgreement = agreed.agreement();
        } else {
            loadAgreement = agreed.agreement();
        }
    }

    @Override
    public long migrationFlags() {
        return MigrationFeature.STOP_COPY | MigrationFeature.PRE_COPY;
    }

    @Override
    public synchronized void arc(MigrationState from, MigrationState to) throws VfioUserProtocolException {
        try {
            if (to == MigrationState.PRE_COPY) {
                beginSave(true);
                MemorySegment bar2 = card.bar2();
                sent = Arena.ofAuto().allocate(bar2.byteSize(), 8);
                sent.copyFrom(bar2);
                SampleCardState.writeMemory(writer, sent);
                writer.flush();
                out.markInitial();
            } else if (to == MigrationState.STOP_COPY && from == MigrationState.PRE_COPY) {
                card.setRunning(false);
                SampleCardState.writeChanges(writer, sent, card.bar2());
                SampleCardState.writeRegisters(writer, card.registerSnapshot());
                writer.finish();
            } else if (to == MigrationState.STOP_COPY) {
                beginSave(false);
                SampleCardState.writeMemory(writer, card.bar2());
                SampleCardState.writeRegisters(writer, card.registerSnapshot());
                writer.finish();
            } else if (to == MigrationState.RESUMING) {
                loadAgreementOrRefuse();
                in.clear();
            } else if (from == MigrationState.RESUMING) {
                HandshakeAgreement a = loadAgreement;
                loadAgreement = null;
                SampleCardState state = SampleCardState.read(in.channel(), a, card.bar2Bytes());
                card.restore(state);
                in.clear();
            } else if (from.isSaving()) {
                endSave();
            }
            if (to == MigrationState.STOP) {
                card.setRunning(false);
            } else if (to == MigrationState.RUNNING) {
                card.setRunning(true);
            }
        } catch (VfioUserProtocolException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            endSave();
            throw new VfioUserProtocolException(Errno.EINVAL, "sample card " + from + " -> " + to + ": " + e.getMessage());
        }
    }

    private void beginSave(boolean withPreCopy) throws IOException {
        HandshakeAgreement a = saveAgreement;
        if (a == null && requireAgreement) {
            throw new VfioUserProtocolException(Errno.EPERM, "no migration handshake agreed as source: run 'migration relay' first");
        }
        saveAgreement = null;
        if (a == null) {
            a = HandshakeAgreement.builder(SampleCardState.MODEL_ID, SampleCardState.FORMAT_CLASS, SampleCardState.FORMAT_VERSION)
                    .implementationId(SampleCardState.IMPLEMENTATION_ID).build();
        }
        out.clear();
        writer = DeviceStateWriter.open(out, a);
        preCopy = withPreCopy;
    }

    private void loadAgreementOrRefuse() throws VfioUserProtocolException {
        if (loadAgreement == null && requireAgreement) {
            throw new VfioUserProtocolException(Errno.EPERM, "no migration handshake agreed as destination: run 'migration relay' first");
        }
    }

    private void endSave() {
        if (writer != null) {
            writer.close();
            writer = null;
        }
        out.clear();
        sent = null;
        preCopy = false;
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
        if (!preCopy || sent == null) {
            return new PreCopyInfo(0, 0);
        }
        return new PreCopyInfo(out.initialLeft(), (long) SampleCardState.changedPages(sent, card.bar2()) * SampleCardState.PAGE_BYTES);
    }

    /** Forgets a save or load in progress (VFIO_USER_DEVICE_RESET, client gone). */
    @Override
    public synchronized void reset() {
        endSave();
        in.clear();
    }
}
