package dev.outproc.vhost.message;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Test helper: every payload as a map of named fields (numbers as {@link Long}, byte strings as
 * {@code byte[]}), decoded with the production decoders and encoded with the production encoders. The
 * names are the ones the golden vector files use in their comments.
 */
final class PayloadFields {
    private PayloadFields() {
    }

    /** {@return the payload type of a message, as a reader would decide it} */
    static PayloadType typeOf(VhostUserRequest request, boolean reply, long size) {
        if (!reply) {
            return request.requestPayload();
        }
        if (request.ackReplyAllowed() && size == 8) {
            return PayloadType.U64;
        }
        if (request == FrontendRequest.GET_CONFIG && size == 0) {
            return PayloadType.NONE;
        }
        return request.replyPayload();
    }

    static Map<String, Object> decode(PayloadType type, MemorySegment s, long o, long size) {
        Map<String, Object> m = new LinkedHashMap<>();
        switch (type) {
            case NONE -> {
            }
            case U64 -> m.put("value", new U64Payload.Decoder().wrap(s, o).value());
            case VRING_STATE -> {
                VringState.Decoder d = new VringState.Decoder().wrap(s, o);
                m.put("index", d.index());
                m.put("num", d.num());
            }
            case VRING_ADDR -> {
                VringAddr.Decoder d = new VringAddr.Decoder().wrap(s, o);
                m.put("index", d.index());
                m.put("flags", d.flags());
                m.put("descUserAddr", d.descUserAddr());
                m.put("usedUserAddr", d.usedUserAddr());
                m.put("availUserAddr", d.availUserAddr());
                m.put("logGuestAddr", d.logGuestAddr());
            }
            case MEM_TABLE -> {
                MemTable.Decoder d = new MemTable.Decoder().wrap(s, o);
                m.put("nregions", d.nregions());
                for (int i = 0; i < d.nregions(); i++) {
                    region(m, "regions[" + i + "].", d.region(i));
                }
            }
            case SINGLE_MEM_REGION -> region(m, "region.", new SingleMemRegion.Decoder().wrap(s, o).region());
            case LOG -> {
                LogDescription.Decoder d = new LogDescription.Decoder().wrap(s, o);
                m.put("mmapSize", d.mmapSize());
                m.put("mmapOffset", d.mmapOffset());
            }
            case IOTLB -> {
                IotlbMsg.Decoder d = new IotlbMsg.Decoder().wrap(s, o);
                m.put("iova", d.iova());
                m.put("size", d.size());
                m.put("userAddr", d.userAddr());
                m.put("perm", (long) d.perm());
                m.put("type", (long) d.type());
            }
            case CONFIG -> {
                ConfigSpace.Decoder d = new ConfigSpace.Decoder().wrap(s, o);
                m.put("configOffset", d.configOffset());
                m.put("configSize", d.configSize());
                m.put("flags", d.flags());
                MemorySegment config = Arena.ofAuto().allocate(Math.max(1, d.configSize()));
                d.copyConfigTo(config, 0);
                m.put("config", config.asSlice(0, d.configSize()).toArray(ValueLayout.JAVA_BYTE));
            }
            case CRYPTO_SESSION -> {
                CryptoSession.Decoder d = new CryptoSession.Decoder().wrap(s, o, size);
                MemorySegment bytes = Arena.ofAuto().allocate(d.length());
                d.copyTo(bytes, 0);
                m.put("bytes", bytes.toArray(ValueLayout.JAVA_BYTE));
            }
            case VRING_AREA -> {
                VringArea.Decoder d = new VringArea.Decoder().wrap(s, o);
                m.put("indexAndFlags", d.indexAndFlags());
                m.put("mmapSize", d.mmapSize());
                m.put("mmapOffset", d.mmapOffset());
            }
            case INFLIGHT -> {
                InflightDescription.Decoder d = new InflightDescription.Decoder().wrap(s, o);
                m.put("mmapSize", d.mmapSize());
                m.put("mmapOffset", d.mmapOffset());
                m.put("numQueues", (long) d.numQueues());
                m.put("queueSize", (long) d.queueSize());
            }
            case SHARED_OBJECT -> {
                SharedObject.Decoder d = new SharedObject.Decoder().wrap(s, o);
                MemorySegment u = Arena.ofAuto().allocate(16);
                u.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 0, d.uuidMostSignificantBits());
                u.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN), 8, d.uuidLeastSignificantBits());
                m.put("uuid", u.toArray(ValueLayout.JAVA_BYTE));
            }
            case DEVICE_STATE_TRANSFER -> {
                DeviceStateTransfer.Decoder d = new DeviceStateTransfer.Decoder().wrap(s, o);
                m.put("direction", d.direction());
                m.put("phase", d.phase());
            }
            case SHMEM_MAP -> {
                ShmemMap.Decoder d = new ShmemMap.Decoder().wrap(s, o);
                m.put("shmid", (long) d.shmid());
                m.put("fdOffset", d.fdOffset());
                m.put("shmOffset", d.shmOffset());
                m.put("len", d.len());
                m.put("flags", d.flags());
            }
            case SHMEM_CONFIG -> {
                ShmemConfig.Decoder d = new ShmemConfig.Decoder().wrap(s, o);
                m.put("nregions", d.nregions());
                for (int i = 0; i < ShmemConfig.MAX_REGIONS; i++) {
                    m.put("memorySizes[" + i + "]", d.memorySize(i));
                }
            }
        }
        return m;
    }

    private static void region(Map<String, Object> m, String prefix, MemoryRegion.Decoder r) {
        m.put(prefix + "guestPhysAddr", r.guestPhysAddr());
        m.put(prefix + "memorySize", r.memorySize());
        m.put(prefix + "userAddr", r.userAddr());
        m.put(prefix + "mmapOffset", r.mmapOffset());
    }

    private static long num(Map<String, Object> m, String key) {
        Object v = m.get(key);
        return v == null ? 0 : (Long) v;
    }

    private static byte[] bytes(Map<String, Object> m, String key) {
        Object v = m.get(key);
        return v == null ? new byte[0] : (byte[]) v;
    }

    /**
     * Encodes a payload from fields into {@code s} at {@code o} (which the caller zeroed).
     *
     * @return the payload size
     */
    static int encode(PayloadType type, Map<String, Object> m, MemorySegment s, long o) {
        switch (type) {
            case NONE -> {
                return 0;
            }
            case U64 -> {
                new U64Payload.Encoder().wrap(s, o).value(num(m, "value"));
                return U64Payload.ENCODED_LENGTH;
            }
            case VRING_STATE -> {
                new VringState.Encoder().wrap(s, o).index(num(m, "index")).num(num(m, "num"));
                return VringState.ENCODED_LENGTH;
            }
            case VRING_ADDR -> {
                new VringAddr.Encoder().wrap(s, o).index(num(m, "index")).flags(num(m, "flags"))
                        .descUserAddr(num(m, "descUserAddr")).usedUserAddr(num(m, "usedUserAddr"))
                        .availUserAddr(num(m, "availUserAddr")).logGuestAddr(num(m, "logGuestAddr"));
                return VringAddr.ENCODED_LENGTH;
            }
            case MEM_TABLE -> {
                int n = (int) num(m, "nregions");
                MemTable.Encoder e = new MemTable.Encoder().wrap(s, o).nregions(n);
                for (int i = 0; i < n; i++) {
                    region(m, "regions[" + i + "].", e.region(i));
                }
                return MemTable.encodedLength(n);
            }
            case SINGLE_MEM_REGION -> {
                region(m, "region.", new SingleMemRegion.Encoder().wrap(s, o).region());
                return SingleMemRegion.ENCODED_LENGTH;
            }
            case LOG -> {
                new LogDescription.Encoder().wrap(s, o).mmapSize(num(m, "mmapSize")).mmapOffset(num(m, "mmapOffset"));
                return LogDescription.ENCODED_LENGTH;
            }
            case IOTLB -> {
                new IotlbMsg.Encoder().wrap(s, o).clear().iova(num(m, "iova")).size(num(m, "size"))
                        .userAddr(num(m, "userAddr")).perm((int) num(m, "perm")).type((int) num(m, "type"));
                return IotlbMsg.ENCODED_LENGTH;
            }
            case CONFIG -> {
                byte[] config = bytes(m, "config");
                new ConfigSpace.Encoder().wrap(s, o).access(num(m, "configOffset"), (int) num(m, "configSize"), num(m, "flags"))
                        .copyConfigFrom(MemorySegment.ofArray(config), 0, config.length);
                return ConfigSpace.encodedLength((int) num(m, "configSize"));
            }
            case CRYPTO_SESSION -> {
                byte[] b = bytes(m, "bytes");
                new CryptoSession.Encoder().wrap(s, o).copyFrom(MemorySegment.ofArray(b), 0, b.length);
                return b.length;
            }
            case VRING_AREA -> {
                new VringArea.Encoder().wrap(s, o).indexAndFlags(num(m, "indexAndFlags")).mmapSize(num(m, "mmapSize"))
                        .mmapOffset(num(m, "mmapOffset"));
                return VringArea.ENCODED_LENGTH;
            }
            case INFLIGHT -> {
                new InflightDescription.Encoder().wrap(s, o).clear().mmapSize(num(m, "mmapSize")).mmapOffset(num(m, "mmapOffset"))
                        .numQueues((int) num(m, "numQueues")).queueSize((int) num(m, "queueSize"));
                return InflightDescription.ENCODED_LENGTH;
            }
            case SHARED_OBJECT -> {
                MemorySegment u = MemorySegment.ofArray(bytes(m, "uuid"));
                var be = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
                new SharedObject.Encoder().wrap(s, o).uuid(u.get(be, 0), u.get(be, 8));
                return SharedObject.ENCODED_LENGTH;
            }
            case DEVICE_STATE_TRANSFER -> {
                new DeviceStateTransfer.Encoder().wrap(s, o).direction(num(m, "direction")).phase(num(m, "phase"));
                return DeviceStateTransfer.ENCODED_LENGTH;
            }
            case SHMEM_MAP -> {
                new ShmemMap.Encoder().wrap(s, o).clear().shmid((int) num(m, "shmid")).fdOffset(num(m, "fdOffset"))
                        .shmOffset(num(m, "shmOffset")).len(num(m, "len")).flags(num(m, "flags"));
                return ShmemMap.ENCODED_LENGTH;
            }
            case SHMEM_CONFIG -> {
                ShmemConfig.Encoder e = new ShmemConfig.Encoder().wrap(s, o).clear().nregions((int) num(m, "nregions"));
                for (int i = 0; i < ShmemConfig.MAX_REGIONS; i++) {
                    e.memorySize(i, num(m, "memorySizes[" + i + "]"));
                }
                return ShmemConfig.ENCODED_LENGTH;
            }
            default -> throw new IllegalArgumentException(type.toString());
        }
    }

    private static void region(Map<String, Object> m, String prefix, MemoryRegion.Encoder r) {
        r.guestPhysAddr(num(m, prefix + "guestPhysAddr")).memorySize(num(m, prefix + "memorySize"))
                .userAddr(num(m, prefix + "userAddr")).mmapOffset(num(m, prefix + "mmapOffset"));
    }
}
