// Reused buffers for tensors that live only until the writer has them on disk.
//
// A fresh buffer per tensor costs more than the work done on it on some machines: the kernel maps
// and zeroes every new page on first touch (about 300 MB/s on the 2-core development VM, slower
// than reading the weights or transposing them). Each role (reading a checkpoint, transposing)
// takes its buffers from its own ring. The writer keeps one tensor in flight while it computes the
// next, so a ring has two buffers and a buffer is reused by the take after next.

/** Tensors above this size get a buffer of their own: a ring holds two of its largest tensor. */
const MAX_SCRATCH_BYTES = 128 * 2 ** 20;

export type Allocate = (byteLength: number) => Uint8Array;

export const freshBytes: Allocate = (byteLength) => new Uint8Array(byteLength);

export class ScratchRing {
  private readonly buffers: (ArrayBuffer | undefined)[] = [undefined, undefined];
  private next = 0;

  constructor(private readonly maxBytes = MAX_SCRATCH_BYTES) {}

  /** A buffer of `byteLength` bytes with stale contents, valid until the take after next. */
  readonly take: Allocate = (byteLength) => {
    if (byteLength > this.maxBytes) return freshBytes(byteLength);
    const slot = this.next;
    this.next = 1 - slot;
    let buffer = this.buffers[slot];
    if (!buffer || buffer.byteLength < byteLength) this.buffers[slot] = buffer = new ArrayBuffer(byteLength);
    return new Uint8Array(buffer, 0, byteLength);
  };
}
