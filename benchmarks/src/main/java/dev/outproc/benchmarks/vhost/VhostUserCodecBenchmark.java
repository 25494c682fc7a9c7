package dev.outproc.benchmarks.vhost;

import dev.outproc.core.transport.MessageChannel;
import dev.outproc.vhost.connection.VhostUserMessage;
import dev.outproc.vhost.connection.VhostUserMessageReader;
import dev.outproc.vhost.connection.VhostUserMessageWriter;
import dev.outproc.vhost.message.FrontendRequest;
import dev.outproc.vhost.message.MemTable;
import dev.outproc.vhost.message.MemoryRegion;
import dev.outproc.vhost.message.MessageStream;
import dev.outproc.vhost.message.MessageValidator;
import dev.outproc.vhost.message.U64Payload;
import dev.outproc.vhost.message.VhostUserHeader;
import dev.outproc.vhost.message.VhostUserProtocolException;
import dev.outproc.vhost.message.VhostUserRequest;
import dev.outproc.vhost.message.VringAddr;
import dev.outproc.vhost.message.VringState;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The vhost-user codecs: encode a message (header and payload) into a buffer, run the syntax checks a
 * reader runs, and decode every field, for the header alone and the most common payloads. Score: ns per
 * message; {@code -prof gc} shows {@code gc.alloc.rate.norm}, which should be about 0 B/op.
 * {@link #socketRoundTripSetVringNum} adds a real socket pair (writer and reader in one thread) for
 * comparison; its allocations come from the transport below the codecs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class VhostUserCodecBenchmark {
    private static final int P = VhostUserHeader.ENCODED_LENGTH;
    private static final int CAP = MessageValidator.DEFAULT_MAX_PAYLOAD_BYTES;

    private final VhostUserHeader.Encoder headerEncoder = new VhostUserHeader.Encoder();
    private final VhostUserHeader.Decoder headerDecoder = new VhostUserHeader.Decoder();
    private final U64Payload.Encoder u64Encoder = new U64Payload.Encoder();
    private final U64Payload.Decoder u64Decoder = new U64Payload.Decoder();
    private final VringState.Encoder stateEncoder = new VringState.Encoder();
    private final VringState.Decoder stateDecoder = new VringState.Decoder();
    private final VringAddr.Encoder addrEncoder = new VringAddr.Encoder();
    private final VringAddr.Decoder addrDecoder = new VringAddr.Decoder();
    private final MemTable.Encoder tableEncoder = new MemTable.Encoder();
    private final MemTable.Decoder tableDecoder = new MemTable.Decoder();

    private MemorySegment buffer;
    private long counter;

    private MessageChannel frontend;
    private MessageChannel backend;
    private VhostUserMessageWriter writer;
    private VhostUserMessageReader reader;

    /**
     * Allocates the buffer and connects a socket pair.
     *
     * @throws IOException when the socket pair cannot be created
     */
    @Setup
    public void setUp() throws IOException {
        buffer = Arena.ofAuto().allocate(P + CAP, 8);
        headerEncoder.wrap(buffer, 0);
        headerDecoder.wrap(buffer, 0);
        MessageChannel.Pair pair = MessageChannel.pair();
        frontend = pair.channel();
        backend = MessageChannel.adopt(pair.peerFd());
        writer = new VhostUserMessageWriter(frontend);
        reader = new VhostUserMessageReader(backend, MessageStream.FRONTEND_REQUESTS);
    }

    /** Closes the sockets. */
    @TearDown
    public void tearDown() {
        frontend.close();
        backend.close();
    }

    private VhostUserRequest checkHeader() throws VhostUserProtocolException {
        long request = headerDecoder.request();
        long flags = headerDecoder.flags();
        long size = headerDecoder.size();
        MessageValidator.checkFraming(MessageStream.FRONTEND_REQUESTS, request, flags, size, CAP);
        return MessageValidator.lookup(MessageStream.FRONTEND_REQUESTS, request, flags, size);
    }

    /**
     * Header only (GET_FEATURES): encode, check framing, look up the request.
     *
     * @return a value derived from the decoded header
     * @throws VhostUserProtocolException never
     */
    @Benchmark
    public long headerOnly() throws VhostUserProtocolException {
        headerEncoder.request(FrontendRequest.GET_FEATURES, (counter++ & 1) == 0, 0);
        VhostUserRequest r = checkHeader();
        return r.code() + headerDecoder.size() + headerDecoder.flags();
    }

    /**
     * SET_FEATURES with a u64.
     *
     * @return the decoded features
     * @throws VhostUserProtocolException never
     */
    @Benchmark
    public long setFeaturesU64() throws VhostUserProtocolException {
        u64Encoder.wrap(buffer, P).value(counter++ | 1L << 32);
        headerEncoder.request(FrontendRequest.SET_FEATURES, false, U64Payload.ENCODED_LENGTH);
        VhostUserRequest r = checkHeader();
        MessageValidator.checkPayload(r, false, buffer, P, headerDecoder.size(), 0);
        return u64Decoder.wrap(buffer, P).value();
    }

    /**
     * SET_VRING_NUM with a vring state.
     *
     * @return a value derived from the decoded fields
     * @throws VhostUserProtocolException never
     */
    @Benchmark
    public long setVringNum() throws VhostUserProtocolException {
        stateEncoder.wrap(buffer, P).index(counter & 7).num(256);
        headerEncoder.request(FrontendRequest.SET_VRING_NUM, false, VringState.ENCODED_LENGTH);
        VhostUserRequest r = checkHeader();
        MessageValidator.checkPayload(r, false, buffer, P, headerDecoder.size(), 0);
        stateDecoder.wrap(buffer, P);
        return stateDecoder.index() + stateDecoder.num() + counter++;
    }

    /**
     * SET_VRING_ADDR with a vring address description.
     *
     * @return a value derived from the decoded fields
     * @throws VhostUserProtocolException never
     */
    @Benchmark
    public long setVringAddr() throws VhostUserProtocolException {
        long base = 0x7f00_0000_0000L + (counter++ << 12);
        addrEncoder.wrap(buffer, P).index(1).flags(0).descUserAddr(base).usedUserAddr(base + 0x2000)
                .availUserAddr(base + 0x1000).logGuestAddr(0);
        headerEncoder.request(FrontendRequest.SET_VRING_ADDR, false, VringAddr.ENCODED_LENGTH);
        VhostUserRequest r = checkHeader();
        MessageValidator.checkPayload(r, false, buffer, P, headerDecoder.size(), 0);
        addrDecoder.wrap(buffer, P);
        return addrDecoder.descUserAddr() + addrDecoder.usedUserAddr() + addrDecoder.availUserAddr()
                + addrDecoder.logGuestAddr() + addrDecoder.index() + addrDecoder.flags();
    }

    /**
     * SET_MEM_TABLE with 8 regions (the largest common control message).
     *
     * @return a value derived from the decoded fields
     * @throws VhostUserProtocolException never
     */
    @Benchmark
    public long setMemTable8() throws VhostUserProtocolException {
        tableEncoder.wrap(buffer, P).nregions(MemTable.MAX_REGIONS);
        long gpa = counter++ << 30;
        for (int i = 0; i < MemTable.MAX_REGIONS; i++) {
            tableEncoder.region(i).guestPhysAddr(gpa + ((long) i << 30)).memorySize(1L << 30)
                    .userAddr(0x7f00_0000_0000L + ((long) i << 30)).mmapOffset(0);
        }
        headerEncoder.request(FrontendRequest.SET_MEM_TABLE, true, MemTable.encodedLength(MemTable.MAX_REGIONS));
        VhostUserRequest r = checkHeader();
        MessageValidator.checkPayload(r, false, buffer, P, headerDecoder.size(), MemTable.MAX_REGIONS);
        tableDecoder.wrap(buffer, P);
        long sum = 0;
        for (int i = 0; i < tableDecoder.nregions(); i++) {
            MemoryRegion.Decoder region = tableDecoder.region(i);
            sum += region.guestPhysAddr() + region.memorySize() + region.userAddr() + region.mmapOffset();
        }
        return sum;
    }

    /**
     * SET_VRING_NUM written and read over a real socket pair in one thread (two syscalls each way).
     *
     * @return the decoded queue size
     * @throws IOException when the socket fails
     */
    @Benchmark
    public long socketRoundTripSetVringNum() throws IOException {
        stateEncoder.wrap(writer.buffer(), VhostUserMessageWriter.PAYLOAD_OFFSET).index(0).num(256);
        writer.sendRequest(FrontendRequest.SET_VRING_NUM, false, VringState.ENCODED_LENGTH, List.of());
        VhostUserMessage m = reader.read();
        return stateDecoder.wrap(m.payload(), 0).num();
    }
}
