package dev.outproc.examples.vfio;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.outproc.migration.handshake.HandshakeAgreement;
import dev.outproc.migration.stream.DeviceStateReader;
import dev.outproc.migration.stream.DeviceStateWriter;
import dev.outproc.migration.stream.FieldWriter;
import dev.outproc.migration.stream.SectionInfo;
import dev.outproc.vfio.virtio.VirtioPciState;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The {@code virtio_pci} section: round trips over seeded random states, refusals, and a fuzz target for its decoder. */
class VirtioPciStateTest {
    private static final int SECTION = 4;

    private static HandshakeAgreement agreement() {
        return HandshakeAgreement.builder("virtio-spec.org/pci/virtio-blk", "virtio-spec.org/pci/virtio-blk/state", 3)
                .implementationId("outproc.dev/examples/vfio-user-virtio-blk").build();
    }

    static VirtioPciState random(SplittableRandom r) {
        List<VirtioPciState.Queue> queues = new ArrayList<>();
        int n = 1 + r.nextInt(4);
        for (int i = 0; i < n; i++) {
            queues.add(new VirtioPciState.Queue(i, 1 << r.nextInt(16), r.nextBoolean(), r.nextInt(0x10000), r.nextLong(),
                    r.nextLong(), r.nextLong(), r.nextBoolean(), r.nextInt(0x10000), r.nextInt(0x10000), r.nextBoolean(),
                    r.nextBoolean()));
        }
        byte[] table = new byte[16 * (n + 1)];
        r.nextBytes(table);
        byte[] pending = new byte[r.nextBoolean() ? 8 : 0];
        r.nextBytes(pending);
        return new VirtioPciState(r.nextInt(), r.nextInt(), r.nextLong(), r.nextInt(256), r.nextInt(0x10000), r.nextInt(0x10000),
                r.nextInt(256), r.nextInt(4), r.nextInt(0x10000), table, queues, pending);
    }

    static byte[] stream(VirtioPciState s) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, agreement())) {
            VirtioPciStateSection.write(s, w, SECTION);
            w.finish();
        }
        return out.toByteArray();
    }

    static VirtioPciState read(byte[] stream) throws IOException {
        VirtioPciState found = null;
        try (DeviceStateReader r = DeviceStateReader.open(new ByteArrayInputStream(stream), agreement())) {
            SectionInfo s;
            while ((s = r.nextSection()) != null) {
                if (s.id() == SECTION) {
                    found = VirtioPciStateSection.read(r);
                } else {
                    r.skipSection();
                }
            }
            r.finish();
        }
        if (found == null) {
            throw new IOException("no virtio_pci section");
        }
        return found;
    }

    @ParameterizedTest(name = "seed={0}")
    @ValueSource(longs = {1, 2, 3, 0x5eed, 20261129})
    void shouldReadBackWhatWasWritten(long seed) throws IOException {
        VirtioPciState s = random(new SplittableRandom(seed));
        VirtioPciState back = read(stream(s));
        assertEquals(s, back, "seed=" + seed);
        assertEquals(s.queues(), back.queues(), "seed=" + seed);
        assertArrayEquals(s.msixTable(), back.msixTable(), "seed=" + seed);
        assertArrayEquals(s.msixPending(), back.msixPending(), "seed=" + seed);
        assertEquals(List.of(s.deviceFeatureSelect(), s.driverFeatureSelect(), s.deviceStatus(), s.queueSelect(), s.configMsixVector(),
                        s.configGeneration(), s.isr(), s.msixControl()),
                List.of(back.deviceFeatureSelect(), back.driverFeatureSelect(), back.deviceStatus(), back.queueSelect(),
                        back.configMsixVector(), back.configGeneration(), back.isr(), back.msixControl()), "seed=" + seed);
        assertEquals(s.driverFeatures(), back.driverFeatures(), "seed=" + seed);
    }

    /** A section as written before field 12 existed: fields 1-11 only. */
    private static byte[] streamWithoutPendingBits(VirtioPciState s) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DeviceStateWriter w = DeviceStateWriter.open(out, agreement())) {
            FieldWriter f = w.beginSection(SECTION, VirtioPciState.SECTION_VERSION, true);
            f.int32(1, s.deviceFeatureSelect()).int32(2, s.driverFeatureSelect()).int64(3, s.driverFeatures()).int8(4, s.deviceStatus())
                    .int16(5, s.queueSelect()).int16(6, s.configMsixVector()).int8(7, s.configGeneration()).int8(8, s.isr())
                    .int16(9, s.msixControl()).bytes(10, s.msixTable());
            f.beginRecordArray(11, 0);
            f.endArray();
            w.endSection();
            w.finish();
        }
        return out.toByteArray();
    }

    @ParameterizedTest(name = "seed={0}")
    @ValueSource(longs = {4, 5, 6})
    void shouldReadASectionWithoutThePendingBitsAsNonePending(long seed) throws IOException {
        VirtioPciState s = random(new SplittableRandom(seed));
        VirtioPciState back = read(streamWithoutPendingBits(s));
        assertArrayEquals(new byte[0], back.msixPending(), "seed=" + seed);
        assertArrayEquals(s.msixTable(), back.msixTable(), "seed=" + seed);
        assertEquals(List.of(), back.queues(), "seed=" + seed);
    }

    @ParameterizedTest(name = "seed={0}")
    @ValueSource(longs = {7, 8, 9})
    void shouldRefuseTruncatedOrFlippedStreams(long seed) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] good = stream(random(r));
        byte[] flipped = good.clone();
        flipped[r.nextInt(flipped.length)] ^= (byte) (1 << r.nextInt(8));
        assertThrows(IOException.class, () -> read(flipped), "seed=" + seed);
        assertThrows(IOException.class, () -> read(java.util.Arrays.copyOf(good, r.nextInt(good.length))), "seed=" + seed);
    }

    /** Arbitrary bytes overwrite a valid stream; the decoder may only refuse with an IOException. */
    @FuzzTest(maxDuration = "30s")
    void decodeDamagedSections(byte[] data) throws IOException {
        SplittableRandom r = new SplittableRandom(data.length == 0 ? 0 : data[0]);
        byte[] stream = stream(random(r));
        for (int i = 1; i + 2 < data.length; i += 3) {
            int at = (((data[i] & 0xFF) << 8) | (data[i + 1] & 0xFF)) % stream.length;
            stream[at] = data[i + 2];
        }
        try {
            read(stream);
        } catch (IOException expected) {
            // the one refusal allowed
        }
    }
}
