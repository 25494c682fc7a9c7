package dev.outproc.vhost.message;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * The payload "VhostUserShared" of GET_SHARED_OBJECT and the back-end's SHARED_OBJECT_ADD/REMOVE/LOOKUP
 * (vhost-user.rst): a 16-byte UUID "whose first three components (a 32-bit value, then two 16-bit
 * values) are stored in big endian" — the RFC 9562 byte order, so the UUID's most significant 64 bits
 * are the first 8 bytes read big-endian, whatever the machine's order.
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                   uuid (16 bytes, big endian)                 |
 * ~                                                               ~
 * +---------------------------------------------------------------+
 * </pre>
 */
public final class SharedObject {
    /** Offset of the UUID. */
    public static final int UUID_OFFSET = 0;
    /** Size of the payload in bytes. */
    public static final int ENCODED_LENGTH = 16;
    private static final ValueLayout.OfLong BE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private SharedObject() {
    }

    /** Reads the payload in place. */
    public static final class Decoder extends Flyweight<Decoder> {
        /** Creates an unwrapped decoder. */
        public Decoder() {
        }

        /** {@return the UUID's most significant 64 bits} */
        public long uuidMostSignificantBits() {
            return segment.get(BE_U64, offset + UUID_OFFSET);
        }

        /** {@return the UUID's least significant 64 bits} */
        public long uuidLeastSignificantBits() {
            return segment.get(BE_U64, offset + UUID_OFFSET + 8);
        }

        /** {@return the UUID (allocates)} */
        public UUID uuid() {
            return new UUID(uuidMostSignificantBits(), uuidLeastSignificantBits());
        }
    }

    /** Writes the payload in place. */
    public static final class Encoder extends Flyweight<Encoder> {
        /** Creates an unwrapped encoder. */
        public Encoder() {
        }

        /**
         * Writes the UUID.
         *
         * @param mostSignificantBits the UUID's high 64 bits
         * @param leastSignificantBits the UUID's low 64 bits
         * @return this encoder
         */
        public Encoder uuid(long mostSignificantBits, long leastSignificantBits) {
            segment.set(BE_U64, offset + UUID_OFFSET, mostSignificantBits);
            segment.set(BE_U64, offset + UUID_OFFSET + 8, leastSignificantBits);
            return this;
        }

        /**
         * Writes the UUID.
         *
         * @param uuid the UUID
         * @return this encoder
         */
        public Encoder uuid(UUID uuid) {
            return uuid(uuid.getMostSignificantBits(), uuid.getLeastSignificantBits());
        }
    }
}
