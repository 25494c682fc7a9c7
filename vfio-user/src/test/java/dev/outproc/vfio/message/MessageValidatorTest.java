package dev.outproc.vfio.message;

import dev.outproc.core.fd.Errno;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The syntax layer's refusals, each with the errno the peer gets. */
class MessageValidatorTest {
    private static final VfioUserCommand.Direction IN = VfioUserCommand.Direction.CLIENT_TO_SERVER;

    private static MemorySegment command(int code, int payloadBytes) {
        MemorySegment m = Arena.ofAuto().allocate(VfioUserHeader.ENCODED_LENGTH + payloadBytes);
        new VfioUserHeader.Encoder().wrap(m, 0).msgId(7).command(code).size(m.byteSize()).flags(0).error(0);
        return m;
    }

    private static int errnoOf(MemorySegment m, int fds) {
        return assertThrows(VfioUserProtocolException.class, () -> MessageValidator.checkCommand(m, 0, fds, IN, 1 << 20, 8)).errno();
    }

    @Test
    void shouldRefuseUnknownAndRetiredCommands() {
        assertEquals(Errno.ENOSYS, errnoOf(command(99, 0), 0));
        assertEquals(Errno.ENOSYS, errnoOf(command(0, 0), 0));
        assertEquals(Errno.ENOTSUP, errnoOf(command(14, 0), 0));
    }

    @Test
    void shouldRefuseHeadersThatBreakFraming() {
        MemorySegment m = command(4, 16);
        new VfioUserHeader.Encoder().wrap(m, 0).size(15);
        assertEquals(Errno.EINVAL, assertThrows(VfioUserProtocolException.class, () -> MessageValidator.checkHeader(m, 0, 4096)).errno());
        new VfioUserHeader.Encoder().wrap(m, 0).size(5000);
        assertEquals(Errno.E2BIG, assertThrows(VfioUserProtocolException.class, () -> MessageValidator.checkHeader(m, 0, 4096)).errno());
        new VfioUserHeader.Encoder().wrap(m, 0).size(32).flags(0x40);
        assertEquals(Errno.EINVAL, assertThrows(VfioUserProtocolException.class, () -> MessageValidator.checkHeader(m, 0, 4096)).errno());
        new VfioUserHeader.Encoder().wrap(m, 0).flags(0x2);
        assertEquals(Errno.EINVAL, assertThrows(VfioUserProtocolException.class, () -> MessageValidator.checkHeader(m, 0, 4096)).errno());
    }

    @Test
    void shouldRefuseWrongPayloadSizes() {
        assertEquals(Errno.EINVAL, errnoOf(command(4, 12), 0));
        assertEquals(Errno.EINVAL, errnoOf(command(2, 31), 0));
        assertEquals(Errno.EINVAL, errnoOf(command(13, 1), 0));
        MemorySegment write = command(10, 16 + 3);
        new RegionAccess.Encoder().wrap(write, 16).offset(0).region(0).count(4);
        assertEquals(Errno.EINVAL, errnoOf(write, 0));
    }

    @Test
    void shouldRefuseTransfersOverMaxDataXferSize() {
        MemorySegment read = command(9, 16);
        new RegionAccess.Encoder().wrap(read, 16).offset(0).region(0).count((1 << 20) + 1);
        assertEquals(Errno.E2BIG, errnoOf(read, 0));
    }

    @Test
    void shouldRefuseFdsWhereNoneBelongAndTooManyFds() {
        assertEquals(Errno.EINVAL, errnoOf(command(13, 0), 1));
        MemorySegment map = command(2, 32);
        new DmaMap.Encoder().wrap(map, 16).argsz(32).flags(3).size(4096);
        assertEquals(Errno.EINVAL, errnoOf(map, 2));
        MemorySegment set = command(8, 20);
        new IrqSet.Encoder().wrap(set, 16).argsz(20).flags(IrqSet.DATA_EVENTFD | IrqSet.ACTION_TRIGGER).index(2).start(0).count(1);
        assertEquals(Errno.EINVAL, errnoOf(set, 2));
        new IrqSet.Encoder().wrap(set, 16).count(64);
        assertEquals(Errno.EINVAL, errnoOf(set, 9)); // over this side's max_msg_fds of 8
    }

    @Test
    void shouldRefuseSetIrqsFlagCombinationsThatAreNotOneDataAndOneAction() {
        MemorySegment set = command(8, 20);
        IrqSet.Encoder e = new IrqSet.Encoder().wrap(set, 16).argsz(20).index(0).start(0).count(1);
        for (int flags : new int[] {IrqSet.DATA_NONE, IrqSet.ACTION_TRIGGER, IrqSet.DATA_NONE | IrqSet.DATA_BOOL | IrqSet.ACTION_MASK,
                IrqSet.DATA_NONE | IrqSet.ACTION_MASK | IrqSet.ACTION_UNMASK, IrqSet.DATA_NONE | IrqSet.ACTION_TRIGGER | 0x40}) {
            e.flags(flags);
            assertEquals(Errno.EINVAL, errnoOf(set, 0), "flags=0x" + Integer.toHexString(flags));
        }
        for (int data : new int[] {IrqSet.DATA_NONE, IrqSet.DATA_EVENTFD}) {
            for (int action : new int[] {IrqSet.ACTION_MASK, IrqSet.ACTION_UNMASK, IrqSet.ACTION_TRIGGER}) {
                e.flags(data | action);
                try {
                    assertEquals(VfioUserCommand.DEVICE_SET_IRQS, MessageValidator.checkCommand(set, 0, 0, IN, 1 << 20, 8));
                } catch (VfioUserProtocolException ex) {
                    throw new AssertionError("flags=0x" + Integer.toHexString(data | action), ex);
                }
            }
        }
    }

    @Test
    void shouldRefuseShortDeviceFeaturePayloads() {
        assertEquals(Errno.EINVAL, errnoOf(command(16, 4), 0));
        MemorySegment set = command(16, 8 + 4);
        new DeviceFeature.Encoder().wrap(set, 16).argsz(16).flags(DeviceFeature.SET | DeviceFeature.MIG_DEVICE_STATE);
        assertEquals(Errno.EINVAL, errnoOf(set, 0));
        MemorySegment start = command(16, 8 + 16);
        new DeviceFeature.Encoder().wrap(start, 16).argsz(24).flags(DeviceFeature.SET | DeviceFeature.DMA_LOGGING_START);
        new DmaLoggingControl.Encoder().wrap(start, 24).pageSize(4096).numRanges(2);
        assertEquals(Errno.EINVAL, errnoOf(start, 0));
        MemorySegment both = command(16, 8);
        new DeviceFeature.Encoder().wrap(both, 16).argsz(8).flags(DeviceFeature.SET | DeviceFeature.GET | DeviceFeature.MIGRATION);
        assertEquals(Errno.EINVAL, errnoOf(both, 0));
    }

    @Test
    void shouldRefuseUnmapAllWithARangeAndUnknownDmaFlags() {
        MemorySegment unmap = command(3, 24);
        new DmaUnmap.Encoder().wrap(unmap, 16).argsz(24).flags(DmaUnmap.FLAG_ALL).address(0x1000).size(0);
        assertEquals(Errno.EINVAL, errnoOf(unmap, 0));
        new DmaUnmap.Encoder().wrap(unmap, 16).flags(DmaUnmap.FLAG_GET_DIRTY_BITMAP).address(0);
        assertEquals(Errno.EINVAL, errnoOf(unmap, 0));
        MemorySegment map = command(2, 32);
        new DmaMap.Encoder().wrap(map, 16).argsz(32).flags(8).size(4096);
        assertEquals(Errno.EINVAL, errnoOf(map, 0));
        new DmaMap.Encoder().wrap(map, 16).flags(3).address(-4096L).size(8192);
        assertEquals(Errno.EINVAL, errnoOf(map, 0));
    }

    @Test
    void shouldRefuseAServerToClientCommandArrivingAtTheServer() {
        MemorySegment read = command(11, 16);
        assertEquals(Errno.EINVAL, errnoOf(read, 0));
    }

    @Test
    void shouldRefuseRegionCapabilityChainsThatLoopOrLeaveTheReply() {
        MemorySegment m = Arena.ofAuto().allocate(64);
        new RegionInfo.Encoder().wrap(m, 0).argsz(64).flags(RegionInfo.FLAG_CAPS).capOffset(32);
        new InfoCapHeader.Encoder().wrap(m, 32).id(99).version(1).next(32);
        assertThrows(VfioUserProtocolException.class, () -> RegionCapabilities.read(m, 0, 64));
        new InfoCapHeader.Encoder().wrap(m, 32).next(60);
        assertThrows(VfioUserProtocolException.class, () -> RegionCapabilities.read(m, 0, 64));
        new InfoCapHeader.Encoder().wrap(m, 32).id(InfoCapHeader.CAP_SPARSE_MMAP).next(0);
        new SparseMmapCap.Encoder().wrap(m, 40).nrAreas(3);
        assertThrows(VfioUserProtocolException.class, () -> RegionCapabilities.read(m, 0, 64));
    }
}
