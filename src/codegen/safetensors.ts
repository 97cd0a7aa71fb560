// Safetensors I/O for model weights. Checkpoints can be many gigabytes and come
// from untrusted sources, so the reader validates the whole header up front
// (every rejection carries a machine-readable reason) and then reads tensor
// bytes on demand by offset instead of loading the file. The writer is
// deterministic so compiled artifacts are reproducible, and atomic so an
// interrupted build never leaves a half-written file behind.
// Typed-array views assume a little-endian host, as Node's supported platforms are.

import { writeFileAtomic } from "../fs/atomic-write.js";
import fs from "node:fs";
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from "../numerics/float-convert.js";
import { freshBytes, type Allocate } from "../numerics/scratch.js";

const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_SIZES;

/** Matches the reference implementation's limit, which guards against header-driven memory blowups. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

export type SafetensorsErrorReason =
  | "too-small"
  | "header-too-large"
  | "header-out-of-bounds"
  | "invalid-utf8"
  | "invalid-json"
  | "duplicate-key"
  | "bad-header"
  | "bad-metadata"
  | "unknown-dtype"
  | "bad-shape"
  | "bad-offsets"
  | "gap-or-overlap"
  | "size-mismatch"
  | "trailing-bytes"
  | "truncated"
  | "unknown-tensor"
  | "unsupported-dtype"
  | "reserved-name"
  | "closed";

export class SafetensorsError extends Error {
  readonly reason: SafetensorsErrorReason;
  readonly path: string;

  constructor(reason: SafetensorsErrorReason, path: string, detail: string) {
    super(`${path}: ${detail} (${reason})`);
    this.name = "SafetensorsError";
    this.reason = reason;
    this.path = path;
  }
}

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Byte offsets relative to the start of the data section (8 + header length). */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsFile {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in data-section order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** Raw little-endian bytes of one tensor, read from disk on each call. */
  readBytes(name: string): Uint8Array;
  /**
   * Values of an F16, BF16, F32 or F64 tensor as float32. The file's bytes are read into memory from
   * `allocate` (default: a fresh buffer), which an F32 tensor's result shares.
   */
  readFloat32(name: string, allocate?: Allocate): Float32Array;
  close(): void;
}

export function openSafetensors(path: string): SafetensorsFile {
  const fd = fs.openSync(path, "r");
  try {
    const { dataStart, metadata, tensors } = readHeader(fd, path);
    return new LazySafetensorsFile(path, fd, dataStart, metadata, tensors);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

export interface SafetensorsTensorInput {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** Raw little-endian bytes of any dtype, or float32 values converted to F32, F16, BF16 or F64. */
  data: Uint8Array | Float32Array;
}

/**
 * Writes tensors with keys in sorted order and data laid out like the reference
 * writer (wider dtypes first, then by name) so every tensor is naturally aligned.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata: Readonly<Record<string, string>> = {},
): void {
  const encoded = tensors.map((t) => encodeTensor(path, t));
  const seen = new Set<string>();
  for (const t of encoded) {
    if (seen.has(t.name))
      throw new SafetensorsError("duplicate-key", path, `duplicate tensor name ${JSON.stringify(t.name)}`);
    seen.add(t.name);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string")
      throw new SafetensorsError("bad-metadata", path, `metadata value for ${JSON.stringify(key)} is not a string`);
  }

  const layout = [...encoded].sort(
    (a, b) => DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype] || compareStrings(a.name, b.name),
  );
  const offsets = new Map<string, [number, number]>();
  let offset = 0;
  for (const t of layout) {
    offsets.set(t.name, [offset, offset + t.bytes.byteLength]);
    offset += t.bytes.byteLength;
  }

  const entries: string[] = [];
  const metadataKeys = Object.keys(metadata).sort(compareStrings);
  if (metadataKeys.length > 0) {
    const body = metadataKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(",");
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${body}}`);
  }
  for (const t of [...encoded].sort((a, b) => compareStrings(a.name, b.name))) {
    const info = { dtype: t.dtype, shape: t.shape, data_offsets: offsets.get(t.name) };
    entries.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
  }
  const json = Buffer.from(`{${entries.join(",")}}`, "utf8");
  const padded = Buffer.alloc(json.length + ((8 - (json.length % 8)) % 8), 0x20);
  json.copy(padded);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));

  writeFileAtomic(path, [prefix, padded, ...layout.map((t) => t.bytes)]);
}

interface ParsedHeader {
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensorInfo>;
}

function readHeader(fd: number, path: string): ParsedHeader {
  const fileSize = fs.fstatSync(fd).size;
  if (fileSize < 8)
    throw new SafetensorsError("too-small", path, `file is ${fileSize} bytes, shorter than the 8-byte header length`);

  const headerLength = Buffer.from(readExactly(fd, path, 0, 8)).readBigUInt64LE(0);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError("header-too-large", path, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES}`);
  }
  if (8n + headerLength > BigInt(fileSize)) {
    throw new SafetensorsError(
      "header-out-of-bounds",
      path,
      `header of ${headerLength} bytes extends past the end of the ${fileSize}-byte file`,
    );
  }
  const dataStart = 8 + Number(headerLength);

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(readExactly(fd, path, 8, dataStart - 8));
  } catch {
    throw new SafetensorsError("invalid-utf8", path, "header is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError("invalid-json", path, `header is not valid JSON: ${(err as Error).message}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined)
    throw new SafetensorsError("duplicate-key", path, `header repeats the key ${JSON.stringify(duplicate)}`);
  if (!isPlainObject(parsed)) throw new SafetensorsError("bad-header", path, "header is not a JSON object");

  let metadata: Record<string, string> = {};
  const infos: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === METADATA_KEY) metadata = parseMetadata(path, value);
    else infos.push(parseTensorInfo(path, name, value));
  }

  // Zero-sized tensors share offsets, so ties on begin are broken by end.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  for (const info of infos) {
    if (info.begin !== expectedBegin) {
      throw new SafetensorsError(
        "gap-or-overlap",
        path,
        `tensor ${JSON.stringify(info.name)} begins at ${info.begin}, expected ${expectedBegin}`,
      );
    }
    const expectedBytes = info.shape.reduce((n, d) => n * BigInt(d), 1n) * BigInt(DTYPE_SIZES[info.dtype]);
    if (BigInt(info.end - info.begin) !== expectedBytes) {
      throw new SafetensorsError(
        "size-mismatch",
        path,
        `tensor ${JSON.stringify(info.name)} spans ${info.end - info.begin} bytes but ${info.dtype}[${info.shape.join(",")}] needs ${expectedBytes}`,
      );
    }
    expectedBegin = info.end;
  }

  const dataLength = fileSize - dataStart;
  if (expectedBegin > dataLength) {
    throw new SafetensorsError(
      "truncated",
      path,
      `tensor data needs ${expectedBegin} bytes but only ${dataLength} follow the header`,
    );
  }
  if (expectedBegin < dataLength) {
    throw new SafetensorsError("trailing-bytes", path, `${dataLength - expectedBegin} bytes follow the last tensor`);
  }

  return { dataStart, metadata, tensors: new Map(infos.map((info) => [info.name, info])) };
}

function parseMetadata(path: string, value: unknown): Record<string, string> {
  // The reference implementation deserializes an Option, so null means "no metadata".
  if (value === null) return {};
  if (!isPlainObject(value)) throw new SafetensorsError("bad-metadata", path, `${METADATA_KEY} is not an object`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string")
      throw new SafetensorsError("bad-metadata", path, `metadata value for ${JSON.stringify(key)} is not a string`);
  }
  // A null prototype keeps lookups like metadata['constructor'] from returning inherited members.
  return Object.freeze(Object.assign(Object.create(null) as Record<string, string>, value));
}

function parseTensorInfo(path: string, name: string, value: unknown): SafetensorsTensorInfo {
  if (!isPlainObject(value))
    throw new SafetensorsError("bad-header", path, `entry for tensor ${JSON.stringify(name)} is not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_SIZES, dtype)) {
    throw new SafetensorsError(
      "unknown-dtype",
      path,
      `tensor ${JSON.stringify(name)} has unknown dtype ${JSON.stringify(dtype)}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInteger)) {
    throw new SafetensorsError(
      "bad-shape",
      path,
      `tensor ${JSON.stringify(name)} has invalid shape ${JSON.stringify(shape)}`,
    );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every(isNonNegativeSafeInteger) ||
    offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError(
      "bad-offsets",
      path,
      `tensor ${JSON.stringify(name)} has invalid data_offsets ${JSON.stringify(offsets)}`,
    );
  }
  return Object.freeze({
    name,
    dtype: dtype as SafetensorsDtype,
    shape: Object.freeze([...(shape as number[])]),
    begin: offsets[0] as number,
    end: offsets[1] as number,
  });
}

/**
 * JSON.parse keeps the last of repeated keys, which would let two readers of
 * the same file disagree about its contents. Assumes `text` is valid JSON.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: null, expectKey: false });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top) top.expectKey = top.keys !== null;
    }
  }
  return undefined;
}

class LazySafetensorsFile implements SafetensorsFile {
  private fd: number | undefined;

  constructor(
    readonly path: string,
    fd: number,
    private readonly dataStart: number,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
  ) {
    this.fd = fd;
  }

  readBytes(name: string): Uint8Array {
    return this.read(this.info(name));
  }

  readFloat32(name: string, allocate: Allocate = freshBytes): Float32Array {
    const info = this.info(name);
    switch (info.dtype) {
      case "F32": {
        const bytes = this.read(info, allocate);
        return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      }
      case "F16": {
        const bytes = this.read(info, allocate);
        return float16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      }
      case "BF16": {
        const bytes = this.read(info, allocate);
        return bfloat16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      }
      case "F64": {
        const bytes = this.read(info, allocate);
        return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8));
      }
      default:
        throw new SafetensorsError(
          "unsupported-dtype",
          this.path,
          `tensor ${JSON.stringify(name)} has dtype ${info.dtype}, not a float type`,
        );
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private info(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError("unknown-tensor", this.path, `no tensor named ${JSON.stringify(name)}`);
    return info;
  }

  private read(info: SafetensorsTensorInfo, allocate: Allocate = freshBytes): Uint8Array {
    if (this.fd === undefined) throw new SafetensorsError("closed", this.path, "file has been closed");
    return readExactly(this.fd, this.path, this.dataStart + info.begin, info.end - info.begin, allocate);
  }
}

/** Single read calls are capped well below the 2 GiB limit of read(2) on Linux. */
const READ_CHUNK = 1 << 30;

function readExactly(
  fd: number,
  path: string,
  position: number,
  length: number,
  allocate: Allocate = freshBytes,
): Uint8Array {
  // A buffer of its own (never Buffer's shared pool) starts at offset 0, so typed views are aligned.
  const out = allocate(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, Math.min(length - done, READ_CHUNK), position + done);
    if (n === 0)
      throw new SafetensorsError(
        "truncated",
        path,
        `file ended ${length - done} bytes early (modified after opening?)`,
      );
    done += n;
  }
  return out;
}

interface EncodedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
}

function encodeTensor(path: string, t: SafetensorsTensorInput): EncodedTensor {
  if (t.name === METADATA_KEY)
    throw new SafetensorsError("reserved-name", path, `${METADATA_KEY} cannot be used as a tensor name`);
  if (!Object.hasOwn(DTYPE_SIZES, t.dtype))
    throw new SafetensorsError(
      "unknown-dtype",
      path,
      `tensor ${JSON.stringify(t.name)} has unknown dtype ${JSON.stringify(t.dtype)}`,
    );
  if (!t.shape.every(isNonNegativeSafeInteger)) {
    throw new SafetensorsError(
      "bad-shape",
      path,
      `tensor ${JSON.stringify(t.name)} has invalid shape ${JSON.stringify(t.shape)}`,
    );
  }
  const elements = t.shape.reduce((n, d) => n * d, 1);
  const bytes = t.data instanceof Float32Array ? floatBytes(path, t.name, t.dtype, t.data) : t.data;
  if (bytes.byteLength !== elements * DTYPE_SIZES[t.dtype]) {
    throw new SafetensorsError(
      "size-mismatch",
      path,
      `tensor ${JSON.stringify(t.name)} has ${bytes.byteLength} bytes but ${t.dtype}[${t.shape.join(",")}] needs ${elements * DTYPE_SIZES[t.dtype]}`,
    );
  }
  return { name: t.name, dtype: t.dtype, shape: [...t.shape], bytes };
}

function floatBytes(path: string, name: string, dtype: SafetensorsDtype, data: Float32Array): Uint8Array {
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case "F32":
      return view(data);
    case "F16":
      return view(float32ToFloat16(data));
    case "BF16":
      return view(float32ToBfloat16(data));
    case "F64":
      return view(Float64Array.from(data));
    default:
      throw new SafetensorsError(
        "unsupported-dtype",
        path,
        `tensor ${JSON.stringify(name)}: float32 data cannot be written as ${dtype}`,
      );
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNonNegativeSafeInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
