package dev.outproc.vhost.backend;

import dev.outproc.core.virtio.VirtioFeature;
import dev.outproc.vhost.message.ProtocolFeature;

import java.nio.file.Path;

/**
 * A front-end in a process of its own, for {@link FrontendKilledFaultTest}: connects to the socket in
 * {@code args[0]}, maps its guest memory, starts ring 0, completes {@code args[1]} writes, prints
 * {@code IO} and then submits a full ring of further writes and waits for them forever (the test's device
 * holds them, so they are in flight when the process is killed).
 */
final class KillableFrontendMain {
    private KillableFrontendMain() {
    }

    public static void main(String[] args) throws Exception {
        Path socket = Path.of(args[0]);
        int writes = Integer.parseInt(args[1]);
        Rig rig = Rig.connect(socket, 1L << 20);
        long acked = rig.negotiate(VirtioFeature.VERSION_1.mask(), true, ProtocolFeature.REPLY_ACK.mask());
        rig.setMemTable();
        Rig.Ring ring = rig.ring(0, 64, acked, 8, 4096);
        rig.program(ring, Rig.Setup.standard());
        byte[] block = new byte[4096];
        for (int i = 0; i < writes; i++) {
            block[0] = (byte) i;
            if (ring.write(0, i * 8L, block) != RamBlkDevice.S_OK) {
                System.out.println("FAILED write " + i);
                return;
            }
        }
        for (int slot = 0; slot < 8; slot++) {
            ring.submit(slot, RamBlkDevice.T_OUT, slot * 8L, 4096, false, false);
        }
        ring.kick();
        System.out.println("IO");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
