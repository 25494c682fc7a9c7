package dev.outproc.examples.net;

import dev.outproc.core.virtio.VirtioQueue;
import dev.outproc.core.virtqueue.DescriptorChain;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.outproc.core.memory.Layouts.LE_U16;

/**
 * The virtio-net control queue (VIRTIO 1.2 §5.1.6.5), offered with more than one queue pair. Of the
 * command classes only VIRTIO_NET_CTRL_MQ's VQ_PAIRS_SET is understood (§5.1.6.5.5): it records how many
 * pairs the driver uses. Every other command, and a malformed one, is answered VIRTIO_NET_ERR.
 * <pre>
 *  readable                                         writable
 *  +-------+---------+----------------------------+ +-----+
 *  | class | command | command-specific-data ...  | | ack |
 *  +-------+---------+----------------------------+ +-----+
 *    u8      u8        VQ_PAIRS_SET: le16 pairs      u8
 * </pre>
 * Runs on the worker of queue pair 0 (the device's worker group 0).
 */
final class NetControlQueue {
    /** VIRTIO_NET_CTRL_MQ. */
    static final int CLASS_MQ = 4;
    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET. */
    static final int MQ_VQ_PAIRS_SET = 0;
    /** VIRTIO_NET_OK. */
    static final byte OK = 0;
    /** VIRTIO_NET_ERR. */
    static final byte ERR = 1;
    /** class + command + the le16 of VQ_PAIRS_SET. */
    private static final int VQ_PAIRS_SET_BYTES = 4;

    private final int maxPairs;
    private final MemorySegment scratch = Arena.ofAuto().allocate(8, 8);
    private volatile int activePairs = 1;
    private final VirtioQueue.ChainHandler handler = this::serve;

    NetControlQueue(int maxPairs) {
        this.maxPairs = maxPairs;
    }

    int activePairs() {
        return activePairs;
    }

    void reset() {
        activePairs = 1;
    }

    void process(VirtioQueue queue) throws IOException {
        queue.drain(handler);
    }

    private long serve(DescriptorChain chain) throws IOException {
        if (chain.totalWritable() < 1) {
            return 0; // nowhere to put the ack: the driver gets the chain back with nothing written
        }
        byte ack = ERR;
        long readable = chain.totalReadable();
        if (readable >= 2) {
            chain.readReadable(0, scratch, 0, 2);
            int cls = scratch.get(ValueLayout.JAVA_BYTE, 0) & 0xff;
            int command = scratch.get(ValueLayout.JAVA_BYTE, 1) & 0xff;
            if (cls == CLASS_MQ && command == MQ_VQ_PAIRS_SET && readable == VQ_PAIRS_SET_BYTES) {
                chain.readReadable(2, scratch, 2, 2);
                int pairs = Short.toUnsignedInt(scratch.get(LE_U16, 2));
                if (pairs >= 1 && pairs <= maxPairs) {
                    activePairs = pairs;
                    ack = OK;
                }
            }
        }
        scratch.set(ValueLayout.JAVA_BYTE, 4, ack);
        chain.writeWritable(0, scratch, 4, 1);
        return 1;
    }
}
