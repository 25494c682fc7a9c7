package dev.outproc.vhost.message;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Property: for every payload type and random field values, decode(encode(fields)) == fields, and
 * encode(decode(bytes)) == bytes. Seeds are fixed (reproducible) plus one from the clock; each
 * assertion message carries the seed.
 */
class PayloadRoundTripTest {
    private static final int RUNS_PER_TYPE = 200;

    static Stream<Arguments> cases() {
        long clockSeed = System.nanoTime();
        return Stream.of(PayloadType.values()).filter(t -> t != PayloadType.NONE)
                .flatMap(t -> LongStream.of(1, 2, 0x5EED, clockSeed).mapToObj(seed -> Arguments.of(t, seed)));
    }

    @ParameterizedTest(name = "{0} seed={1}")
    @MethodSource("cases")
    void shouldRoundTripRandomPayloads(PayloadType type, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int run = 0; run < RUNS_PER_TYPE; run++) {
            Map<String, Object> fields = randomFields(type, random);
            String where = type + " seed=" + seed + " run=" + run + " fields=" + fields.keySet();
            MemorySegment buffer = Arena.ofAuto().allocate(type.maxBytes() + 16);
            int offset = random.nextInt(8); // payloads sit at any offset of a receive buffer
            int size = PayloadFields.encode(type, fields, buffer, offset);
            assertTrue(type.sizeInBounds(size), where + " size=" + size);

            Map<String, Object> decoded = PayloadFields.decode(type, buffer, offset, size);
            for (Map.Entry<String, Object> e : fields.entrySet()) {
                Object actual = decoded.get(e.getKey());
                if (e.getValue() instanceof byte[] b) {
                    assertArrayEquals(b, (byte[]) actual, where + " field " + e.getKey());
                } else {
                    assertEquals(e.getValue(), actual, where + " field " + e.getKey());
                }
            }

            MemorySegment again = Arena.ofAuto().allocate(type.maxBytes() + 16);
            int size2 = PayloadFields.encode(type, decoded, again, offset);
            assertEquals(size, size2, where);
            assertArrayEquals(buffer.asSlice(offset, size).toArray(ValueLayout.JAVA_BYTE),
                    again.asSlice(offset, size).toArray(ValueLayout.JAVA_BYTE), where + ": encode(decode(bytes)) != bytes");
        }
    }

    private static long u32(SplittableRandom r) {
        return r.nextLong() & 0xFFFF_FFFFL;
    }

    private static byte[] bytes(SplittableRandom r, int n) {
        byte[] b = new byte[n];
        r.nextBytes(b);
        return b;
    }

    private static void region(Map<String, Object> m, String prefix, SplittableRandom r) {
        m.put(prefix + "guestPhysAddr", r.nextLong());
        m.put(prefix + "memorySize", r.nextLong());
        m.put(prefix + "userAddr", r.nextLong());
        m.put(prefix + "mmapOffset", r.nextLong());
    }

    static Map<String, Object> randomFields(PayloadType type, SplittableRandom r) {
        Map<String, Object> m = new LinkedHashMap<>();
        switch (type) {
            case NONE -> {
            }
            case U64 -> m.put("value", r.nextLong());
            case VRING_STATE -> {
                m.put("index", u32(r));
                m.put("num", u32(r));
            }
            case VRING_ADDR -> {
                m.put("index", u32(r));
                m.put("flags", u32(r));
                m.put("descUserAddr", r.nextLong());
                m.put("usedUserAddr", r.nextLong());
                m.put("availUserAddr", r.nextLong());
                m.put("logGuestAddr", r.nextLong());
            }
            case MEM_TABLE -> {
                int n = r.nextInt(MemTable.MAX_REGIONS + 1);
                m.put("nregions", (long) n);
                for (int i = 0; i < n; i++) {
                    region(m, "regions[" + i + "].", r);
                }
            }
            case SINGLE_MEM_REGION -> region(m, "region.", r);
            case LOG -> {
                m.put("mmapSize", r.nextLong());
                m.put("mmapOffset", r.nextLong());
            }
            case IOTLB -> {
                m.put("iova", r.nextLong());
                m.put("size", r.nextLong());
                m.put("userAddr", r.nextLong());
                m.put("perm", (long) r.nextInt(256));
                m.put("type", (long) r.nextInt(256));
            }
            case CONFIG -> {
                int n = r.nextInt(ConfigSpace.MAX_CONFIG_BYTES + 1);
                m.put("configOffset", u32(r));
                m.put("configSize", (long) n);
                m.put("flags", u32(r));
                m.put("config", bytes(r, n));
            }
            case CRYPTO_SESSION -> m.put("bytes", bytes(r, CryptoSession.MIN_BYTES + r.nextInt(CryptoSession.MAX_BYTES - CryptoSession.MIN_BYTES + 1)));
            case VRING_AREA -> {
                m.put("indexAndFlags", r.nextLong());
                m.put("mmapSize", r.nextLong());
                m.put("mmapOffset", r.nextLong());
            }
            case INFLIGHT -> {
                m.put("mmapSize", r.nextLong());
                m.put("mmapOffset", r.nextLong());
                m.put("numQueues", (long) r.nextInt(65536));
                m.put("queueSize", (long) r.nextInt(65536));
            }
            case SHARED_OBJECT -> m.put("uuid", bytes(r, 16));
            case DEVICE_STATE_TRANSFER -> {
                m.put("direction", u32(r));
                m.put("phase", u32(r));
            }
            case SHMEM_MAP -> {
                m.put("shmid", (long) r.nextInt(256));
                m.put("fdOffset", r.nextLong());
                m.put("shmOffset", r.nextLong());
                m.put("len", r.nextLong());
                m.put("flags", r.nextLong());
            }
            case SHMEM_CONFIG -> {
                m.put("nregions", (long) r.nextInt(ShmemConfig.MAX_REGIONS + 1));
                for (int i = 0; i < ShmemConfig.MAX_REGIONS; i++) {
                    if (r.nextBoolean()) {
                        m.put("memorySizes[" + i + "]", r.nextLong());
                    }
                }
            }
        }
        return m;
    }
}
