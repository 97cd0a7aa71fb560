// NumPy .npy I/O so reference inputs and expected outputs can be exchanged
// with Python tooling. Only the little-endian, C-ordered dtypes the compiler
// deals in are supported; anything else is rejected rather than misread.
// The header is a Python dict literal, parsed here by a small dedicated parser
// instead of anything resembling eval. Typed-array views assume a little-endian host.

import { writeFileAtomic } from "../fs/atomic-write.js";
import fs from "node:fs";

interface NpyDataTypes {
  "<f4": Float32Array;
  "<f2": Uint16Array;
  "<f8": Float64Array;
  "<i8": BigInt64Array;
  "<i4": Int32Array;
  "|i1": Int8Array;
  "|u1": Uint8Array;
  "|b1": Uint8Array;
}

/** Dtype strings as NumPy writes them (`np.dtype(...).str`); `<f2` data is raw binary16 bits. */
export type NpyDtype = keyof NpyDataTypes;

export type NpyArray = {
  [D in NpyDtype]: { dtype: D; shape: number[]; data: NpyDataTypes[D] };
}[NpyDtype];

export class NpyError extends Error {
  readonly path: string;

  constructor(path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = "NpyError";
    this.path = path;
  }
}

type TypedArrayConstructor<T> = { new (length: number): T; readonly BYTES_PER_ELEMENT: number };

const ARRAY_TYPES: { [D in NpyDtype]: TypedArrayConstructor<NpyDataTypes[D]> } = {
  "<f4": Float32Array,
  "<f2": Uint16Array,
  "<f8": Float64Array,
  "<i8": BigInt64Array,
  "<i4": Int32Array,
  "|i1": Int8Array,
  "|u1": Uint8Array,
  "|b1": Uint8Array,
};

/** Byte order is meaningless for single-byte types, so NumPy accepts either prefix. */
const DESCR_ALIASES: Readonly<Record<string, NpyDtype>> = { "<i1": "|i1", "<u1": "|u1", "<b1": "|b1" };

const MAGIC = Buffer.from([0x93, ...Buffer.from("NUMPY", "latin1")]);
/** NumPy pads headers so the data starts on a 64-byte boundary. */
const ALIGN = 64;

export function readNpy(path: string): NpyArray {
  const bytes = fs.readFileSync(path);
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new NpyError(path, "not a .npy file (bad magic)");
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if ((major !== 1 && major !== 2) || minor !== 0) {
    throw new NpyError(path, `unsupported .npy format version ${major}.${minor}`);
  }
  const lengthFieldEnd = major === 1 ? 10 : 12;
  if (bytes.length < lengthFieldEnd) throw new NpyError(path, "file ends inside the header length");
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const dataStart = lengthFieldEnd + headerLength;
  if (dataStart > bytes.length)
    throw new NpyError(path, `header of ${headerLength} bytes extends past the end of the file`);

  const header = parseHeader(path, bytes.subarray(lengthFieldEnd, dataStart).toString("latin1"));
  const ArrayType = ARRAY_TYPES[header.dtype];
  const count = elementCount(path, header.shape);
  const byteLength = count * ArrayType.BYTES_PER_ELEMENT;
  if (bytes.length - dataStart !== byteLength) {
    throw new NpyError(
      path,
      `data is ${bytes.length - dataStart} bytes but ${header.dtype} (${header.shape.join(", ")}) needs ${byteLength}`,
    );
  }
  // Copy into a fresh buffer: the data offset need not be aligned for the element type.
  const data = new ArrayType(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart));
  if (header.dtype === "|b1") checkBooleans(path, data as Uint8Array);
  return { dtype: header.dtype, shape: header.shape, data } as NpyArray;
}

/** Writes a version 1.0 file, or 2.0 when the header does not fit in 64 KiB; atomically replaces `path`. */
export function writeNpy(path: string, array: NpyArray): void {
  const ArrayType = ARRAY_TYPES[array.dtype];
  if (ArrayType === undefined) throw new NpyError(path, `unsupported dtype ${JSON.stringify(array.dtype)}`);
  if (!(array.data instanceof ArrayType)) {
    throw new NpyError(path, `dtype ${array.dtype} needs a ${ArrayType.name}, got ${array.data.constructor.name}`);
  }
  const count = elementCount(path, array.shape);
  if (array.data.length !== count) {
    throw new NpyError(
      path,
      `shape (${array.shape.join(", ")}) has ${count} elements but data has ${array.data.length}`,
    );
  }
  if (array.dtype === "|b1") checkBooleans(path, array.data);

  const dims = array.shape.map(String);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(", ")})`;
  const dict = `{'descr': '${array.dtype}', 'fortran_order': False, 'shape': ${shape}, }`;
  const header = (version: 1 | 2) => {
    const prefixLength = version === 1 ? 10 : 12;
    const unpadded = prefixLength + dict.length + 1;
    return dict + " ".repeat((ALIGN - (unpadded % ALIGN)) % ALIGN) + "\n";
  };
  const v1Header = header(1);
  const major = v1Header.length <= 0xffff ? 1 : 2;
  const headerText = major === 1 ? v1Header : header(2);

  const prefix = Buffer.alloc(major === 1 ? 10 : 12);
  MAGIC.copy(prefix);
  prefix[6] = major;
  prefix[7] = 0;
  if (major === 1) prefix.writeUInt16LE(headerText.length, 8);
  else prefix.writeUInt32LE(headerText.length, 8);
  const data = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  writeFileAtomic(path, [prefix, Buffer.from(headerText, "latin1"), data]);
}

function elementCount(path: string, shape: readonly number[]): number {
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new NpyError(path, `invalid dimension ${d} in shape (${shape.join(", ")})`);
    count *= d;
  }
  if (!Number.isSafeInteger(count)) throw new NpyError(path, `shape (${shape.join(", ")}) is too large`);
  return count;
}

function checkBooleans(path: string, data: Uint8Array): void {
  const bad = data.findIndex((b) => b > 1);
  if (bad >= 0) throw new NpyError(path, `boolean element ${bad} has byte value ${data[bad]}, expected 0 or 1`);
}

interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
}

type PyValue = string | boolean | number[];

function parseHeader(path: string, text: string): NpyHeader {
  const dict = parsePyDict(path, text);
  const keys = [...dict.keys()].sort();
  if (keys.join() !== "descr,fortran_order,shape") {
    throw new NpyError(path, `header must have exactly the keys descr, fortran_order, shape; got ${keys.join(", ")}`);
  }
  const descr = dict.get("descr");
  const fortranOrder = dict.get("fortran_order");
  const shape = dict.get("shape");
  if (typeof descr !== "string") throw new NpyError(path, "structured dtypes are not supported");
  if (typeof fortranOrder !== "boolean") throw new NpyError(path, "header 'fortran_order' is not a boolean");
  if (fortranOrder)
    throw new NpyError(path, "Fortran-ordered arrays are not supported; save with C order (np.ascontiguousarray)");
  if (!Array.isArray(shape)) throw new NpyError(path, "header 'shape' is not a tuple");

  const dtype = Object.hasOwn(ARRAY_TYPES, descr) ? (descr as NpyDtype) : DESCR_ALIASES[descr];
  if (dtype === undefined) {
    const hint = descr.startsWith(">") ? " (big-endian data is not supported)" : "";
    throw new NpyError(path, `unsupported dtype '${descr}'${hint}`);
  }
  return { dtype, shape };
}

/**
 * Parses the subset of Python literal syntax NumPy writes in headers: a dict
 * with string keys and string, boolean or integer-tuple values.
 */
function parsePyDict(path: string, text: string): Map<string, PyValue> {
  let pos = 0;
  const fail = (what: string): never => {
    throw new NpyError(path, `malformed header: ${what} at offset ${pos} in ${JSON.stringify(text.trim())}`);
  };
  const skipSpace = () => {
    while (pos < text.length && " \t\r\n".includes(text[pos]!)) pos++;
  };
  const eat = (token: string): boolean => {
    skipSpace();
    if (!text.startsWith(token, pos)) return false;
    pos += token.length;
    return true;
  };
  const expect = (token: string) => {
    if (!eat(token)) fail(`expected '${token}'`);
  };
  const parseString = (): string => {
    skipSpace();
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') return fail("expected a string");
    const end = text.indexOf(quote, pos + 1);
    if (end < 0) return fail("unterminated string");
    const value = text.slice(pos + 1, end);
    if (value.includes("\\")) return fail("escape sequences are not supported");
    pos = end + 1;
    return value;
  };
  const parseDim = (): number => {
    skipSpace();
    const match = /^\d+L?/.exec(text.slice(pos));
    if (!match) return fail("expected a non-negative integer");
    pos += match[0].length;
    return Number(match[0].replace("L", ""));
  };
  const parseTuple = (): number[] => {
    const items: number[] = [];
    let trailingComma = false;
    while (!eat(")")) {
      items.push(parseDim());
      trailingComma = eat(",");
      if (!trailingComma) {
        expect(")");
        break;
      }
    }
    // In Python "(3)" is the integer 3, not a tuple.
    if (items.length === 1 && !trailingComma) fail("a one-element tuple needs a trailing comma");
    return items;
  };
  const parseValue = (): PyValue => {
    if (eat("True")) return true;
    if (eat("False")) return false;
    if (eat("(")) return parseTuple();
    if (eat("[")) return fail("structured dtypes are not supported");
    return parseString();
  };

  const dict = new Map<string, PyValue>();
  expect("{");
  while (!eat("}")) {
    const key = parseString();
    if (dict.has(key)) fail(`duplicate key '${key}'`);
    expect(":");
    dict.set(key, parseValue());
    if (!eat(",")) {
      expect("}");
      break;
    }
  }
  skipSpace();
  if (pos !== text.length) fail("unexpected text after the dict");
  return dict;
}
