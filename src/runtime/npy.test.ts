import fs from "node:fs";
import os from "node:os";
import nodePath from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NpyArray, NpyError, readNpy, writeNpy } from "./npy.js";

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "vlmc-npy-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function tmpPath(): string {
  return nodePath.join(dir, `a${counter++}.npy`);
}

function fileWith(bytes: Uint8Array): string {
  const p = tmpPath();
  fs.writeFileSync(p, bytes);
  return p;
}

/** Files written by NumPy 2.4 (np.lib.format.write_array), base64-encoded. */
const NUMPY_FILES = {
  f4: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=",
  b1: "k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=",
  i8v2: "k05VTVBZAgB0AAAAeydkZXNjcic6ICc8aTgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr//////////wAAAAAAAQAA",
  f2scalar:
    "k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAPg==",
  i1: "k05VTVBZAQB2AHsnZGVzY3InOiAnfGkxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqAfw==",
  fortran:
    "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAAAAAAAAAAA",
  bigEndian:
    "k05VTVBZAQB2AHsnZGVzY3InOiAnPmY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAA==",
};

function numpyFile(name: keyof typeof NUMPY_FILES): string {
  return fileWith(Buffer.from(NUMPY_FILES[name], "base64"));
}

/** Builds a v1.0 file from raw header text, for malformed-header cases. */
function v1File(header: string, data: Uint8Array = new Uint8Array(0)): string {
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return fileWith(Buffer.concat([prefix, Buffer.from(header, "latin1"), data]));
}

/** Element values of any dtype, for comparisons that do not care about the array type. */
function values(a: NpyArray): unknown[] {
  return Array.from(a.data as ArrayLike<unknown>);
}

function expectNpyError(fn: () => unknown, message: RegExp): void {
  expect(fn).toThrow(NpyError);
  expect(fn).toThrow(message);
}

describe("readNpy on files written by NumPy", () => {
  it("reads a 2-D float32 array", () => {
    const a = readNpy(numpyFile("f4"));
    expect(a.dtype).toBe("<f4");
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(values(a)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("reads booleans, int8 and a version 2.0 int64 file", () => {
    const b = readNpy(numpyFile("b1"));
    expect([b.dtype, b.shape, values(b)]).toEqual(["|b1", [3], [1, 0, 1]]);
    const i = readNpy(numpyFile("i1"));
    expect(i.data).toBeInstanceOf(Int8Array);
    expect(values(i)).toEqual([-128, 127]);
    const l = readNpy(numpyFile("i8v2"));
    expect(l.dtype).toBe("<i8");
    expect(l.data).toBeInstanceOf(BigInt64Array);
    expect(values(l)).toEqual([-1n, 2n ** 40n]);
  });

  it("reads a 0-d float16 array as raw binary16 bits", () => {
    const s = readNpy(numpyFile("f2scalar"));
    expect(s.dtype).toBe("<f2");
    expect(s.shape).toEqual([]);
    expect(values(s)).toEqual([0x3e00]);
  });

  it("rejects Fortran order with a clear error", () => {
    expectNpyError(() => readNpy(numpyFile("fortran")), /Fortran-ordered arrays are not supported/);
  });

  it("rejects big-endian data", () => {
    expectNpyError(() => readNpy(numpyFile("bigEndian")), /unsupported dtype '>f4' \(big-endian/);
  });
});

describe("writeNpy", () => {
  it("writes byte-for-byte what NumPy writes, up to header padding", () => {
    const p = tmpPath();
    writeNpy(p, { dtype: "<f4", shape: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) });
    const ours = fs.readFileSync(p);
    const theirs = Buffer.from(NUMPY_FILES.f4, "base64");
    const headerOf = (b: Buffer) => b.subarray(10, 10 + b.readUInt16LE(8)).toString("latin1");
    expect(headerOf(ours).trimEnd()).toBe(headerOf(theirs).trimEnd());
    expect(ours.subarray(10 + ours.readUInt16LE(8)).equals(theirs.subarray(10 + theirs.readUInt16LE(8)))).toBe(true);
    expect((10 + ours.readUInt16LE(8)) % 64).toBe(0);
    expect(headerOf(ours).endsWith("\n")).toBe(true);
  });

  it("round-trips every dtype, including 1-d, 0-d and empty shapes", () => {
    const cases: NpyArray[] = [
      { dtype: "<f4", shape: [3], data: new Float32Array([1.5, -0, NaN]) },
      { dtype: "<f2", shape: [2, 1], data: new Uint16Array([0x3c00, 0x7c00]) },
      { dtype: "<f8", shape: [], data: new Float64Array([Math.PI]) },
      { dtype: "<i8", shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
      { dtype: "<i4", shape: [1, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
      { dtype: "|i1", shape: [2], data: new Int8Array([-128, 127]) },
      { dtype: "|u1", shape: [0, 4], data: new Uint8Array(0) },
      { dtype: "|b1", shape: [2], data: new Uint8Array([0, 1]) },
    ];
    for (const a of cases) {
      const p = tmpPath();
      writeNpy(p, a);
      const b = readNpy(p);
      expect(b.dtype).toBe(a.dtype);
      expect(b.shape).toEqual(a.shape);
      expect(b.data.constructor).toBe(a.data.constructor);
      expect(values(b)).toEqual(values(a));
    }
  });

  it("writes Python tuple syntax for the shape", () => {
    const shapeOf = (shape: number[]) => {
      const p = tmpPath();
      writeNpy(p, { dtype: "|u1", shape, data: new Uint8Array(shape.reduce((x, y) => x * y, 1)) });
      return /'shape': (\([^)]*\))/.exec(fs.readFileSync(p, "latin1"))![1];
    };
    expect(shapeOf([])).toBe("()");
    expect(shapeOf([3])).toBe("(3,)");
    expect(shapeOf([2, 3])).toBe("(2, 3)");
  });

  it("writes only the given view of a subarray", () => {
    const p = tmpPath();
    writeNpy(p, { dtype: "<i4", shape: [2], data: new Int32Array([9, 1, 2, 9]).subarray(1, 3) });
    expect(values(readNpy(p))).toEqual([1, 2]);
  });

  it("switches to format 2.0 when the header exceeds 64 KiB", () => {
    const p = tmpPath();
    const shape = new Array<number>(30_000).fill(1);
    writeNpy(p, { dtype: "<f4", shape, data: new Float32Array([7]) });
    const bytes = fs.readFileSync(p);
    expect([bytes[6], bytes[7]]).toEqual([2, 0]);
    expect((12 + bytes.readUInt32LE(8)) % 64).toBe(0);
    const a = readNpy(p);
    expect(a.shape.length).toBe(30_000);
    expect(values(a)).toEqual([7]);
  });

  it("replaces the target atomically and leaves no temporary file", () => {
    const p = tmpPath();
    fs.writeFileSync(p, "old");
    writeNpy(p, { dtype: "|u1", shape: [1], data: new Uint8Array([5]) });
    expect(values(readNpy(p))).toEqual([5]);
    expect(fs.readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("rejects inconsistent input and leaves the target untouched", () => {
    const p = tmpPath();
    fs.writeFileSync(p, "old");
    expectNpyError(
      () => writeNpy(p, { dtype: "<f4", shape: [3], data: new Float32Array(2) }),
      /has 3 elements but data has 2/,
    );
    expectNpyError(
      () => writeNpy(p, { dtype: "<f4", shape: [2], data: new Float64Array(2) } as unknown as NpyArray),
      /needs a Float32Array, got Float64Array/,
    );
    expectNpyError(() => writeNpy(p, { dtype: "<f4", shape: [-1], data: new Float32Array(0) }), /invalid dimension -1/);
    expectNpyError(() => writeNpy(p, { dtype: "|b1", shape: [1], data: new Uint8Array([2]) }), /expected 0 or 1/);
    expectNpyError(
      () => writeNpy(p, { dtype: ">f4", shape: [0], data: new Float32Array(0) } as unknown as NpyArray),
      /unsupported dtype/,
    );
    expect(fs.readFileSync(p, "latin1")).toBe("old");
  });
});

describe("readNpy validation", () => {
  const header = (descr: string, shape: string, fortran = "False") =>
    `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;

  it("accepts the byte-order-free spellings of single-byte dtypes and Python 2 long dims", () => {
    const a = readNpy(v1File(header("<i1", "(2L,)"), new Uint8Array([0xff, 1])));
    expect(a.dtype).toBe("|i1");
    expect(values(a)).toEqual([-1, 1]);
    // Key order and quoting are free in a Python dict literal.
    const b = readNpy(v1File(`{"shape": (1,), "fortran_order": False, "descr": "<u1"}`, new Uint8Array([3])));
    expect([b.dtype, values(b)]).toEqual(["|u1", [3]]);
  });

  it("rejects non-npy files and unsupported versions", () => {
    expectNpyError(() => readNpy(fileWith(Buffer.from("PK\x03\x04 not numpy"))), /bad magic/);
    expectNpyError(() => readNpy(fileWith(new Uint8Array([0x93, 0x4e, 0x55]))), /bad magic/);
    const v3 = Buffer.from(NUMPY_FILES.f4, "base64");
    v3[6] = 3;
    expectNpyError(() => readNpy(fileWith(v3)), /unsupported \.npy format version 3\.0/);
  });

  it("rejects headers running past the end of the file", () => {
    const truncated = Buffer.from(NUMPY_FILES.f4, "base64").subarray(0, 50);
    expectNpyError(() => readNpy(fileWith(truncated)), /extends past the end/);
  });

  it("rejects data of the wrong length", () => {
    const full = Buffer.from(NUMPY_FILES.f4, "base64");
    expectNpyError(
      () => readNpy(fileWith(full.subarray(0, full.length - 1))),
      /data is 23 bytes but <f4 \(2, 3\) needs 24/,
    );
    expectNpyError(() => readNpy(fileWith(Buffer.concat([full, Buffer.from([0])]))), /data is 25 bytes/);
  });

  it("rejects unsupported dtypes and structured arrays", () => {
    expectNpyError(() => readNpy(v1File(header("<c8", "(1,)"), new Uint8Array(8))), /unsupported dtype '<c8'/);
    expectNpyError(() => readNpy(v1File(header("|O", "(1,)"), new Uint8Array(8))), /unsupported dtype '\|O'/);
    expectNpyError(
      () => readNpy(v1File(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }`)),
      /structured dtypes are not supported/,
    );
  });

  it("rejects malformed headers", () => {
    const bad = [
      `{'descr': '<f4', 'fortran_order': False}`,
      `{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': True}`,
      `{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}`,
      header("<f4", "(1)"),
      header("<f4", "[1]"),
      header("<f4", "(-1,)"),
      header("<f4", "(1,)", "0"),
      `{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } trailing`,
      `{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,), }`,
      `__import__('os')`,
    ];
    for (const h of bad) expect(() => readNpy(v1File(h, new Uint8Array(4))), h).toThrow(NpyError);
  });

  it("rejects boolean bytes other than 0 and 1", () => {
    expectNpyError(() => readNpy(v1File(header("|b1", "(2,)"), new Uint8Array([1, 7]))), /element 1 has byte value 7/);
  });
});
