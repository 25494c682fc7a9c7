package dev.outproc.core.virtqueue;

/** A device queue and a driver queue over the same rings, for tests. */
record Rig(DeviceQueue device, DriverQueue driver) {
    static Rig create(GuestRam ram, boolean packed, int size, long features, int maxIndirect) throws Exception {
        DriverQueue driver = packed
                ? PackedDriverQueue.allocate("test", ram.memory, ram.allocator, size, features, maxIndirect)
                : SplitDriverQueue.allocate("test", ram.memory, ram.allocator, size, features, maxIndirect);
        DeviceQueue device = packed ? new PackedQueue("test") : new SplitQueue("test");
        device.configure(driver.config(), ram.memory);
        return new Rig(device, driver);
    }
}
