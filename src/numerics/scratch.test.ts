// Tests of the scratch ring's reuse rule: a buffer comes back on the take after next.

import { describe, expect, it } from "vitest";
import { ScratchRing } from "./scratch.js";

describe("ScratchRing", () => {
  it("alternates two buffers, growing one when a take needs more", () => {
    const ring = new ScratchRing();
    const a = ring.take(16);
    const b = ring.take(8);
    expect(a.buffer).not.toBe(b.buffer);
    a.fill(1);
    const a2 = ring.take(12);
    expect(a2.buffer).toBe(a.buffer);
    expect(a2.byteLength).toBe(12);
    expect(ring.take(8).buffer).toBe(b.buffer);
    const grown = ring.take(64);
    expect(grown.buffer).not.toBe(a.buffer);
    expect(grown.byteLength).toBe(64);
  });

  it("gives tensors over its limit a buffer of their own", () => {
    const ring = new ScratchRing(1024);
    const big = 1025;
    const first = ring.take(big);
    ring.take(1);
    expect(ring.take(big).buffer).not.toBe(first.buffer);
  });
});
