import fs from "node:fs";
import os from "node:os";
import nodePath from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { float32ToBfloat16, float32ToFloat16 } from "../numerics/float-convert.js";
import {
  MAX_HEADER_BYTES,
  SafetensorsError,
  type SafetensorsErrorReason,
  openSafetensors,
  writeSafetensors,
} from "./safetensors.js";

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "vlmc-safetensors-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

function tmpPath(): string {
  return nodePath.join(dir, `t${counter++}.safetensors`);
}

function u64le(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

/** Builds a file from raw header text and a data section, bypassing the writer's validation. */
function rawFile(header: string | Buffer, data: Uint8Array | number = 0, declaredLength?: bigint): string {
  const headerBytes = typeof header === "string" ? Buffer.from(header, "utf8") : header;
  const dataBytes = typeof data === "number" ? new Uint8Array(data) : data;
  const p = tmpPath();
  fs.writeFileSync(p, Buffer.concat([u64le(declaredLength ?? BigInt(headerBytes.length)), headerBytes, dataBytes]));
  return p;
}

function entry(dtype: unknown, shape: unknown, offsets: unknown): string {
  return JSON.stringify({ dtype, shape, data_offsets: offsets });
}

function expectReason(fn: () => unknown, reason: SafetensorsErrorReason, path?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  expect((caught as SafetensorsError).reason).toBe(reason);
  if (path !== undefined) expect((caught as SafetensorsError).path).toBe(path);
}

function expectOpenFails(p: string, reason: SafetensorsErrorReason): void {
  expectReason(() => openSafetensors(p), reason, p);
}

describe("writeSafetensors", () => {
  it("produces byte-identical output to the reference implementation", () => {
    // Golden bytes from the reference implementation's test_serialization.
    const expected = Buffer.concat([
      u64le(64n),
      Buffer.from('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'),
      Buffer.from(new Float32Array([0, 1, 2, 3, 4, 5]).buffer),
    ]);
    const p = tmpPath();
    writeSafetensors(p, [
      { name: "attn.0", dtype: "F32", shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
    ]);
    expect(fs.readFileSync(p).equals(expected)).toBe(true);
  });

  it("pads the header with spaces to a multiple of 8, like the reference", () => {
    const p = tmpPath();
    writeSafetensors(p, []);
    expect([...fs.readFileSync(p)]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]);

    const q = tmpPath();
    writeSafetensors(q, [{ name: "x", dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) }]);
    const bytes = fs.readFileSync(q);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(bytes.length).toBe(8 + n + 3);
    expect(bytes.subarray(8, 8 + n).toString()).toMatch(/^\{.*\} *$/);
  });

  it("is deterministic regardless of input order, with sorted keys", () => {
    const a = { name: "b.weight", dtype: "F32" as const, shape: [2], data: new Float32Array([1, 2]) };
    const b = { name: "a.bias", dtype: "U8" as const, shape: [1], data: new Uint8Array([7]) };
    const c = { name: "10", dtype: "I64" as const, shape: [], data: new Uint8Array(8).fill(1) };
    const p1 = tmpPath();
    const p2 = tmpPath();
    writeSafetensors(p1, [a, b, c], { z: "1", a: "2" });
    writeSafetensors(p2, [c, b, a], { a: "2", z: "1" });
    const bytes = fs.readFileSync(p1);
    expect(bytes.equals(fs.readFileSync(p2))).toBe(true);
    const header = bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString();
    // Integer-like names must not be hoisted ahead of others as plain object keys would be.
    const keyOrder = ['"__metadata__"', '"10"', '"a.bias"', '"b.weight"'].map((k) => header.indexOf(k));
    expect(keyOrder.every((pos, i) => pos >= 0 && (i === 0 || pos > keyOrder[i - 1]!))).toBe(true);
    expect(header.indexOf('"a"')).toBeLessThan(header.indexOf('"z"'));
  });

  it("lays out wider dtypes first so each tensor is aligned to its element size", () => {
    const p = tmpPath();
    writeSafetensors(p, [
      { name: "a", dtype: "U8", shape: [3], data: new Uint8Array(3) },
      { name: "b", dtype: "F16", shape: [1], data: new Float32Array(1) },
      { name: "c", dtype: "I64", shape: [2], data: new Uint8Array(16) },
      { name: "d", dtype: "F32", shape: [1], data: new Float32Array(1) },
    ]);
    const f = openSafetensors(p);
    try {
      expect([...f.tensors.keys()]).toEqual(["c", "d", "b", "a"]);
      for (const info of f.tensors.values()) {
        const size =
          (info.end - info.begin) /
          Math.max(
            1,
            info.shape.reduce((x, y) => x * y, 1),
          );
        expect(info.begin % size).toBe(0);
      }
    } finally {
      f.close();
    }
  });

  it("round-trips tensors, dtypes and metadata", () => {
    const p = tmpPath();
    const values = new Float32Array([1.5, -2.25, 0.1, 65504]);
    const i64 = new BigInt64Array([-1n, 2n ** 40n]);
    writeSafetensors(
      p,
      [
        { name: "f32", dtype: "F32", shape: [2, 2], data: values },
        { name: "f16", dtype: "F16", shape: [4], data: values },
        { name: "bf16", dtype: "BF16", shape: [4], data: values },
        { name: "f64", dtype: "F64", shape: [4], data: values },
        { name: "i64", dtype: "I64", shape: [2], data: new Uint8Array(i64.buffer) },
        { name: "empty", dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
        { name: "scalar", dtype: "BOOL", shape: [], data: new Uint8Array([1]) },
      ],
      { format: "pt", note: "ünïcode" },
    );
    const f = openSafetensors(p);
    try {
      expect({ ...f.metadata }).toEqual({ format: "pt", note: "ünïcode" });
      expect(f.tensors.get("f32")).toMatchObject({ name: "f32", dtype: "F32", shape: [2, 2] });
      expect(Array.from(f.readFloat32("f32"))).toEqual(Array.from(values));
      expect(Array.from(f.readFloat32("f64"))).toEqual(Array.from(values));
      expect(Array.from(new Uint16Array(f.readBytes("f16").buffer))).toEqual(Array.from(float32ToFloat16(values)));
      expect(Array.from(new Uint16Array(f.readBytes("bf16").buffer))).toEqual(Array.from(float32ToBfloat16(values)));
      expect(Array.from(f.readFloat32("f16"))).toEqual([1.5, -2.25, 0.0999755859375, 65504]);
      expect(Array.from(f.readFloat32("bf16"))).toEqual([1.5, -2.25, 0.10009765625, 65536]);
      expect(Array.from(new BigInt64Array(f.readBytes("i64").buffer))).toEqual([-1n, 2n ** 40n]);
      expect(f.readFloat32("empty").length).toBe(0);
      expect(f.tensors.get("scalar")!.shape).toEqual([]);
      expect(Array.from(f.readBytes("scalar"))).toEqual([1]);
    } finally {
      f.close();
    }
  });

  it("writes atomically: replaces the target and leaves no temporary file", () => {
    const p = tmpPath();
    fs.writeFileSync(p, "old contents");
    writeSafetensors(p, [{ name: "x", dtype: "U8", shape: [1], data: new Uint8Array([9]) }]);
    expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    const f = openSafetensors(p);
    expect(Array.from(f.readBytes("x"))).toEqual([9]);
    f.close();
  });

  it("leaves an existing file untouched when validation fails", () => {
    const p = tmpPath();
    fs.writeFileSync(p, "old contents");
    expectReason(
      () => writeSafetensors(p, [{ name: "x", dtype: "F32", shape: [3], data: new Float32Array(2) }]),
      "size-mismatch",
      p,
    );
    expect(fs.readFileSync(p, "utf8")).toBe("old contents");
    expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("rejects invalid input", () => {
    const p = tmpPath();
    const t = (name: string) => ({ name, dtype: "U8" as const, shape: [1], data: new Uint8Array(1) });
    expectReason(() => writeSafetensors(p, [t("a"), t("a")]), "duplicate-key");
    expectReason(() => writeSafetensors(p, [t("__metadata__")]), "reserved-name");
    expectReason(() => writeSafetensors(p, [{ ...t("a"), shape: [-1] }]), "bad-shape");
    expectReason(() => writeSafetensors(p, [{ ...t("a"), shape: [1.5] }]), "bad-shape");
    expectReason(() => writeSafetensors(p, [{ ...t("a"), dtype: "F128" as never }]), "unknown-dtype");
    expectReason(
      () => writeSafetensors(p, [{ name: "a", dtype: "I32", shape: [1], data: new Float32Array(1) }]),
      "unsupported-dtype",
    );
    expectReason(() => writeSafetensors(p, [], { k: 1 as unknown as string }), "bad-metadata");
    expect(fs.existsSync(p)).toBe(false);
  });
});

describe("openSafetensors laziness", () => {
  it("reads only the header when opening, and tensor bytes by offset on demand", () => {
    const p = tmpPath();
    const big = new Uint8Array(1 << 20);
    writeSafetensors(p, [
      { name: "big", dtype: "U8", shape: [big.length], data: big },
      { name: "small", dtype: "F32", shape: [2], data: new Float32Array([3, 4]) },
    ]);
    const headerLength = Number(fs.readFileSync(p).readBigUInt64LE(0));
    const readSync = vi.spyOn(fs, "readSync");
    const readFileSync = vi.spyOn(fs, "readFileSync");
    const f = openSafetensors(p);
    try {
      const bytesRead = () => readSync.mock.results.reduce((n, r) => n + (r.value as number), 0);
      expect(bytesRead()).toBe(8 + headerLength);
      expect(Array.from(f.readFloat32("small"))).toEqual([3, 4]);
      expect(bytesRead()).toBe(8 + headerLength + 8);
      expect(readFileSync).not.toHaveBeenCalled();
    } finally {
      f.close();
    }
  });

  it("reads current file contents at call time, not a snapshot from open", () => {
    const p = tmpPath();
    writeSafetensors(p, [{ name: "x", dtype: "U8", shape: [2], data: new Uint8Array([1, 2]) }]);
    const f = openSafetensors(p);
    try {
      const size = fs.statSync(p).size;
      const fd = fs.openSync(p, "r+");
      fs.writeSync(fd, new Uint8Array([7, 8]), 0, 2, size - 2);
      fs.closeSync(fd);
      expect(Array.from(f.readBytes("x"))).toEqual([7, 8]);
    } finally {
      f.close();
    }
  });

  it("reports a file truncated after opening", () => {
    const p = tmpPath();
    writeSafetensors(p, [{ name: "x", dtype: "U8", shape: [4], data: new Uint8Array(4) }]);
    const f = openSafetensors(p);
    try {
      fs.truncateSync(p, fs.statSync(p).size - 2);
      expectReason(() => f.readBytes("x"), "truncated", p);
    } finally {
      f.close();
    }
  });

  it("rejects unknown names, non-float conversion and use after close", () => {
    const p = tmpPath();
    writeSafetensors(p, [{ name: "i", dtype: "I64", shape: [1], data: new Uint8Array(8) }]);
    const f = openSafetensors(p);
    expectReason(() => f.readBytes("nope"), "unknown-tensor", p);
    expectReason(() => f.readFloat32("i"), "unsupported-dtype", p);
    f.close();
    f.close();
    expectReason(() => f.readBytes("i"), "closed", p);
  });

  it("returns metadata without inherited members", () => {
    const p = rawFile('{"__metadata__":{"a":"b"}}');
    const f = openSafetensors(p);
    expect(f.metadata["constructor"]).toBeUndefined();
    expect(f.metadata["a"]).toBe("b");
    expect(f.tensors.size).toBe(0);
    f.close();
  });

  it("accepts a null __metadata__, unknown entry fields and zero-sized tensors sharing an offset", () => {
    const p = rawFile(
      `{"__metadata__":null,"z":${entry("F32", [0], [0, 0])},"w":${JSON.stringify({ dtype: "U8", shape: [2], data_offsets: [0, 2], extra: 1 })},"e":${entry("I8", [3, 0], [0, 0])}}`,
      new Uint8Array([5, 6]),
    );
    const f = openSafetensors(p);
    expect([...f.tensors.keys()].sort()).toEqual(["e", "w", "z"]);
    expect(Array.from(f.readBytes("w"))).toEqual([5, 6]);
    f.close();
  });
});

describe("openSafetensors validation", () => {
  const ok = (name = "x") => `"${name}":${entry("U8", [2], [0, 2])}`;

  it("accepts the minimal valid file", () => {
    openSafetensors(rawFile(`{${ok()}}`, 2)).close();
  });

  it("too-small", () => {
    const p = tmpPath();
    fs.writeFileSync(p, new Uint8Array(7));
    expectOpenFails(p, "too-small");
  });

  it("header-too-large", () => {
    expectOpenFails(rawFile("{}", 0, BigInt(MAX_HEADER_BYTES) + 1n), "header-too-large");
    expectOpenFails(rawFile("{}", 0, 2n ** 64n - 1n), "header-too-large");
  });

  it("header-out-of-bounds", () => {
    expectOpenFails(rawFile("{}", 0, 3n), "header-out-of-bounds");
    expectOpenFails(rawFile("{}", 0, BigInt(MAX_HEADER_BYTES)), "header-out-of-bounds");
  });

  it("invalid-utf8 and invalid-json", () => {
    expectOpenFails(rawFile(Buffer.from([0x7b, 0xff, 0x7d])), "invalid-utf8");
    expectOpenFails(rawFile(`{${ok()}`), "invalid-json");
    expectOpenFails(rawFile(""), "invalid-json");
  });

  it("duplicate-key, including keys spelled with escapes and nested keys", () => {
    expectOpenFails(rawFile(`{${ok()},${ok()}}`, 2), "duplicate-key");
    expectOpenFails(rawFile(`{${ok("a")},${ok("\\u0061")}}`, 2), "duplicate-key");
    expectOpenFails(rawFile(`{"x":{"dtype":"U8","dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 2), "duplicate-key");
    // Equal strings in value position or in different objects are not duplicates.
    openSafetensors(
      rawFile(`{"__metadata__":{"x":"x","y":"x"},"x":${entry("U8", [1], [0, 1])},"y":${entry("U8", [1], [1, 2])}}`, 2),
    ).close();
    openSafetensors(rawFile(`{"a\\"b":${entry("U8", [2], [0, 2])}}`, 2)).close();
  });

  it("bad-header", () => {
    expectOpenFails(rawFile("[]"), "bad-header");
    expectOpenFails(rawFile('{"x":[1]}'), "bad-header");
  });

  it("bad-metadata", () => {
    expectOpenFails(rawFile('{"__metadata__":{"a":1}}'), "bad-metadata");
    expectOpenFails(rawFile('{"__metadata__":"a"}'), "bad-metadata");
  });

  it("unknown-dtype", () => {
    expectOpenFails(rawFile(`{"x":${entry("F128", [2], [0, 2])}}`, 2), "unknown-dtype");
    expectOpenFails(rawFile(`{"x":${entry("toString", [2], [0, 2])}}`, 2), "unknown-dtype");
    expectOpenFails(rawFile(`{"x":{"shape":[2],"data_offsets":[0,2]}}`, 2), "unknown-dtype");
  });

  it("bad-shape", () => {
    for (const shape of [[-1], [1.5], ["2"], 2, [2 ** 53]]) {
      expectOpenFails(rawFile(`{"x":${entry("U8", shape, [0, 2])}}`, 2), "bad-shape");
    }
  });

  it("bad-offsets", () => {
    for (const offsets of [[2, 0], [0], [0, 1, 2], [-1, 1], [0, 1.5], "0,2"]) {
      expectOpenFails(rawFile(`{"x":${entry("U8", [2], offsets)}}`, 2), "bad-offsets");
    }
  });

  it("gap-or-overlap", () => {
    expectOpenFails(rawFile(`{"x":${entry("U8", [2], [1, 3])}}`, 3), "gap-or-overlap");
    expectOpenFails(rawFile(`{"a":${entry("U8", [2], [0, 2])},"b":${entry("U8", [2], [3, 5])}}`, 5), "gap-or-overlap");
    expectOpenFails(rawFile(`{"a":${entry("U8", [2], [0, 2])},"b":${entry("U8", [2], [1, 3])}}`, 3), "gap-or-overlap");
  });

  it("size-mismatch", () => {
    expectOpenFails(rawFile(`{"x":${entry("F32", [2], [0, 4])}}`, 4), "size-mismatch");
    expectOpenFails(rawFile(`{"x":${entry("U8", [2 ** 40, 2 ** 40], [0, 2])}}`, 2), "size-mismatch");
  });

  it("trailing-bytes and truncated data", () => {
    expectOpenFails(rawFile(`{${ok()}}`, 3), "trailing-bytes");
    expectOpenFails(rawFile("{}", 1), "trailing-bytes");
    expectOpenFails(rawFile(`{${ok()}}`, 1), "truncated");
  });

  it("closes the descriptor when validation fails", () => {
    const p = rawFile("[]");
    const openSync = vi.spyOn(fs, "openSync");
    const closeSync = vi.spyOn(fs, "closeSync");
    expectOpenFails(p, "bad-header");
    expect(openSync).toHaveBeenCalledTimes(1);
    expect(closeSync.mock.calls).toEqual([[openSync.mock.results[0]!.value]]);
  });
});
