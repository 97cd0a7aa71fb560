// Serialises a plain, IR-independent description of an ONNX model to disk:
// deterministic bytes, tensors streamed one at a time (inline or as external data),
// and an all-or-nothing replacement of the destination files. Files are not fsync'ed: the
// temporary name and rename keep a failed or killed compile from leaving a half-written model,
// and flushing gigabytes to disk is the system's business, as it is for any compiler's output.

import { randomBytes } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import onnxProto from "onnx-proto";
import type { onnx } from "onnx-proto";

const pb = onnxProto.onnx;

export type OnnxDataType = "float32" | "float16" | "bfloat16" | "int64" | "int32" | "int8" | "uint8" | "bool";

export type OnnxAttribute =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "string"; value: string }
  | { kind: "ints"; value: number[] }
  | { kind: "floats"; value: number[] }
  | { kind: "tensor"; value: OnnxTensor };

export interface OnnxTensor {
  name: string;
  dataType: OnnxDataType;
  dims: number[];
  /**
   * Little-endian raw data; produced on demand and called at most once per write, so it may be
   * computed lazily. Writers are done with the result before the call for the tensor after next,
   * so it may live in memory that is reused then (see scratch.ts).
   */
  bytes(): Uint8Array;
}

export interface OnnxValueInfo {
  name: string;
  dataType: OnnxDataType;
  /** Strings are symbolic dimensions (dim_param). */
  dims: (number | string)[];
}

export interface OnnxNode {
  op: string;
  domain?: string;
  name: string;
  /** "" marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, OnnxAttribute>;
  docString?: string;
}

export interface OnnxModel {
  graphName: string;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  opsetImports: { domain: string; version: number }[];
  irVersion: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata: Record<string, string>;
}

export interface WriteOptions {
  externalData: "auto" | "always" | "never";
  /** With "auto", initializers go external when their total size exceeds this; default 1 GiB. */
  externalThresholdBytes?: number;
  /** In external mode, initializers smaller than this stay inline (default 1 KiB). */
  inlineBelowBytes?: number;
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

export interface WriteResult {
  modelBytes: number;
  /** Size of the data file, alignment padding included; 0 when inline. */
  externalBytes: number;
  externalPath?: string;
}

// protobuf refuses messages of 2 GiB or more; the margin leaves room for the graph itself.
const INLINE_LIMIT_BYTES = 2 ** 31 - 64 * 2 ** 20;
const DEFAULT_EXTERNAL_THRESHOLD_BYTES = 2 ** 30;
// Page-aligned offsets let onnxruntime mmap each tensor directly.
const EXTERNAL_ALIGNMENT = 4096;
const DEFAULT_INLINE_BELOW_BYTES = 1024;
// Keeps each write call well under the per-syscall limits of every platform.
const MAX_WRITE_CHUNK = 2 ** 30;

const DATA_TYPES: Record<OnnxDataType, { code: onnx.TensorProto.DataType; size: number }> = {
  float32: { code: pb.TensorProto.DataType.FLOAT, size: 4 },
  float16: { code: pb.TensorProto.DataType.FLOAT16, size: 2 },
  bfloat16: { code: pb.TensorProto.DataType.BFLOAT16, size: 2 },
  int64: { code: pb.TensorProto.DataType.INT64, size: 8 },
  int32: { code: pb.TensorProto.DataType.INT32, size: 4 },
  int8: { code: pb.TensorProto.DataType.INT8, size: 1 },
  uint8: { code: pb.TensorProto.DataType.UINT8, size: 1 },
  bool: { code: pb.TensorProto.DataType.BOOL, size: 1 },
};

function byteSize(tensor: OnnxTensor): number {
  let elements = 1;
  for (const d of tensor.dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new Error(`tensor "${tensor.name}": invalid dimension ${d}`);
    }
    elements *= d;
  }
  return elements * DATA_TYPES[tensor.dataType].size;
}

function totalInitializerBytes(model: OnnxModel): number {
  return model.initializers.reduce((sum, t) => sum + byteSize(t), 0);
}

/** Calls bytes() once and checks it against dims, so a wrong producer fails here rather than in the runtime. */
function tensorBytes(tensor: OnnxTensor): Uint8Array {
  const expected = byteSize(tensor);
  const raw = tensor.bytes();
  if (raw.byteLength !== expected) {
    throw new Error(
      `tensor "${tensor.name}": bytes() returned ${raw.byteLength} bytes, expected ${expected} for ${tensor.dataType}[${tensor.dims.join(",")}]`,
    );
  }
  return raw;
}

function tensorHeader(tensor: OnnxTensor): onnx.ITensorProto {
  return { name: tensor.name, dims: tensor.dims, dataType: DATA_TYPES[tensor.dataType].code };
}

function valueInfo(info: OnnxValueInfo): onnx.IValueInfoProto {
  return {
    name: info.name,
    type: {
      tensorType: {
        elemType: DATA_TYPES[info.dataType].code,
        shape: { dim: info.dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

function checkInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value)) throw new Error(`attribute "${name}": ${value} is not a safe integer`);
  return value;
}

function attribute(name: string, attr: OnnxAttribute): onnx.IAttributeProto {
  const T = pb.AttributeProto.AttributeType;
  switch (attr.kind) {
    case "int":
      return { name, type: T.INT, i: checkInt(name, attr.value) };
    case "float":
      return { name, type: T.FLOAT, f: attr.value };
    case "string":
      return { name, type: T.STRING, s: new TextEncoder().encode(attr.value) };
    case "ints":
      return { name, type: T.INTS, ints: attr.value.map((v) => checkInt(name, v)) };
    case "floats":
      return { name, type: T.FLOATS, floats: attr.value };
    case "tensor":
      return { name, type: T.TENSOR, t: { ...tensorHeader(attr.value), rawData: tensorBytes(attr.value) } };
  }
}

function nodeProto(node: OnnxNode): onnx.INodeProto {
  // Sorted so that the order in which a caller built the record does not change the bytes.
  const attrs = Object.entries(node.attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    name: node.name,
    opType: node.op,
    domain: node.domain ?? "",
    input: node.inputs,
    output: node.outputs,
    attribute: attrs.map(([name, attr]) => attribute(name, attr)),
    ...(node.docString !== undefined ? { docString: node.docString } : {}),
  };
}

function encodeModel(model: OnnxModel, initializers: onnx.ITensorProto[]): Uint8Array {
  return pb.ModelProto.encode({
    ...modelFields(model),
    graph: { ...graphFields(model), initializer: initializers },
  }).finish();
}

/** Everything of the ModelProto but its graph. */
function modelFields(model: OnnxModel): onnx.IModelProto {
  const metadata = Object.keys(model.metadata)
    .sort()
    .map((key) => ({ key, value: model.metadata[key] }));
  return {
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map(({ domain, version }) => ({ domain, version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    ...(model.docString !== undefined ? { docString: model.docString } : {}),
    metadataProps: metadata,
  };
}

/** Everything of the GraphProto but its initializers. */
function graphFields(model: OnnxModel): onnx.IGraphProto {
  return {
    name: model.graphName,
    node: model.nodes.map(nodeProto),
    input: model.inputs.map(valueInfo),
    output: model.outputs.map(valueInfo),
  };
}

// Field numbers of onnx.proto used in the hand-framed parts of an inline model.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;

/** The tag and length that open a length-delimited protobuf field. */
function fieldHeader(field: number, length: number): Uint8Array {
  const bytes = [(field << 3) | 2];
  let rest = length;
  for (; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes.push((rest % 0x80) | 0x80);
  bytes.push(rest);
  return Uint8Array.from(bytes);
}

/**
 * An inline model as a list of pieces whose concatenation is the ModelProto, with each tensor's
 * raw data left as a thunk: tensors are framed by hand (protobuf allows a message's fields in
 * any order), so the raw bytes are never copied into an encoder's buffer and a writer can
 * stream them one tensor at a time. The sizes come from the dims, before any bytes exist.
 */
function inlinePieces(model: OnnxModel): { pieces: (Uint8Array | OnnxTensor)[]; byteLength: number } {
  const total = totalInitializerBytes(model);
  if (total > INLINE_LIMIT_BYTES) {
    throw new Error(
      `initializers total ${total} bytes, over the ${INLINE_LIMIT_BYTES}-byte inline limit (protobuf caps messages at 2 GB): external data is required`,
    );
  }
  const graphHead = pb.GraphProto.encode(graphFields(model)).finish();
  const graphPieces: (Uint8Array | OnnxTensor)[] = [graphHead];
  let graphLength = graphHead.byteLength;
  for (const tensor of model.initializers) {
    const header = pb.TensorProto.encode(tensorHeader(tensor)).finish();
    const rawLength = byteSize(tensor);
    const rawHeader = fieldHeader(TENSOR_RAW_DATA, rawLength);
    const tensorLength = header.byteLength + rawHeader.byteLength + rawLength;
    const framing = fieldHeader(GRAPH_INITIALIZER, tensorLength);
    graphPieces.push(framing, header, rawHeader, tensor);
    graphLength += framing.byteLength + tensorLength;
  }
  const head = pb.ModelProto.encode(modelFields(model)).finish();
  const graphHeader = fieldHeader(MODEL_GRAPH, graphLength);
  return {
    pieces: [head, graphHeader, ...graphPieces],
    byteLength: head.byteLength + graphHeader.byteLength + graphLength,
  };
}

/** Encodes the model with every initializer embedded as raw_data. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const { pieces, byteLength } = inlinePieces(model);
  const out = new Uint8Array(byteLength);
  let at = 0;
  for (const piece of pieces) {
    const bytes = piece instanceof Uint8Array ? piece : tensorBytes(piece);
    out.set(bytes, at);
    at += bytes.byteLength;
  }
  return out;
}

export function decodeOnnxModel(bytes: Uint8Array): onnx.ModelProto {
  return pb.ModelProto.decode(bytes);
}

async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const length = Math.min(data.byteLength - done, MAX_WRITE_CHUNK);
    const { bytesWritten } = await handle.write(data, done, length, position + done);
    done += bytesWritten;
  }
}

/**
 * Keeps one write in flight while the caller computes the next tensor (the writes run on libuv's
 * threads, so reading and transposing overlap with the kernel copying the previous tensor out).
 * `next` returns once the previous write is done, so a caller may then reuse its memory.
 */
class WriteBehind {
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly handle: FileHandle) {}

  async next(data: Uint8Array, position: number): Promise<void> {
    await this.pending;
    this.pending = writeFully(this.handle, data, position);
    // A failure surfaces from the next call or drain(); until then it must not count as unhandled.
    this.pending.catch(() => undefined);
  }

  drain(): Promise<void> {
    return this.pending;
  }
}

/** Streams an inline model into a new file; only one tensor's bytes are alive at a time. */
async function writeInline(path: string, model: OnnxModel, onProgress: WriteOptions["onProgress"]): Promise<number> {
  const { pieces, byteLength } = inlinePieces(model);
  const total = totalInitializerBytes(model);
  const handle = await open(path, "wx");
  const written = new WriteBehind(handle);
  try {
    let at = 0;
    let done = 0;
    for (const piece of pieces) {
      const bytes = piece instanceof Uint8Array ? piece : tensorBytes(piece);
      await written.next(bytes, at);
      at += bytes.byteLength;
      if (piece instanceof Uint8Array) continue;
      done += bytes.byteLength;
      onProgress?.(done, total);
    }
    await written.drain();
    return byteLength;
  } finally {
    await handle.close();
  }
}

async function writeNew(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, "wx");
  try {
    await writeFully(handle, data, 0);
  } finally {
    await handle.close();
  }
}

/** Streams initializers of 1 KiB and more into `path`; only one tensor's bytes are alive at a time. */
async function writeExternalData(
  path: string,
  location: string,
  model: OnnxModel,
  onProgress: WriteOptions["onProgress"],
  inlineBelow: number,
): Promise<{ initializers: onnx.ITensorProto[]; fileBytes: number }> {
  const total = totalInitializerBytes(model);
  const initializers: onnx.ITensorProto[] = [];
  const handle = await open(path, "wx");
  const written = new WriteBehind(handle);
  try {
    let end = 0;
    let done = 0;
    for (const tensor of model.initializers) {
      const raw = tensorBytes(tensor);
      // Small tensors stay inline: shape inputs (Reshape's target…) must be readable during
      // onnxruntime's shape inference, which does not load external data, and an empty tensor's
      // aligned offset could lie past the end of the file. onnx's own converter uses 1 KiB too.
      if (raw.byteLength < inlineBelow) {
        initializers.push({ ...tensorHeader(tensor), rawData: raw.slice() }); // raw's memory may be reused
        done += raw.byteLength;
        onProgress?.(done, total);
        continue;
      }
      const offset = Math.ceil(end / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
      // Padding is written explicitly so the file never depends on sparse-file support.
      if (offset > end) await written.next(new Uint8Array(offset - end), end);
      await written.next(raw, offset);
      end = offset + raw.byteLength;
      done += raw.byteLength;
      initializers.push({
        ...tensorHeader(tensor),
        dataLocation: pb.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: "location", value: location },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(raw.byteLength) },
        ],
      });
      onProgress?.(done, total);
    }
    await written.drain();
    return { initializers, fileBytes: end };
  } finally {
    await handle.close();
  }
}

/**
 * Writes `path` (and `path`.data in external mode) atomically: both files are built under temporary
 * names in the destination folder, then renamed data first and model last, so a reader never sees a
 * model whose data file is missing.
 */
export async function writeOnnxModel(path: string, model: OnnxModel, options: WriteOptions): Promise<WriteResult> {
  const total = totalInitializerBytes(model);
  const external =
    options.externalData === "always" ||
    (options.externalData === "auto" &&
      (total > (options.externalThresholdBytes ?? DEFAULT_EXTERNAL_THRESHOLD_BYTES) || total > INLINE_LIMIT_BYTES));

  const dir = dirname(path);
  const name = basename(path);
  const dataName = `${name}.data`;
  const dataPath = join(dir, dataName);
  const suffix = `tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const tmpModel = join(dir, `.${name}.${suffix}`);
  const tmpData = join(dir, `.${dataName}.${suffix}`);

  try {
    if (external) {
      const { initializers, fileBytes } = await writeExternalData(
        tmpData,
        dataName,
        model,
        options.onProgress,
        options.inlineBelowBytes ?? DEFAULT_INLINE_BELOW_BYTES,
      );
      const bytes = encodeModel(model, initializers);
      await writeNew(tmpModel, bytes);
      await rename(tmpData, dataPath);
      await rename(tmpModel, path);
      return { modelBytes: bytes.byteLength, externalBytes: fileBytes, externalPath: dataPath };
    }
    const modelBytes = await writeInline(tmpModel, model, options.onProgress);
    await rename(tmpModel, path);
    // Removed only after the new model is in place, so a crash in between leaves a valid model.
    await rm(dataPath, { force: true });
    return { modelBytes, externalBytes: 0 };
  } catch (error) {
    await Promise.all([rm(tmpModel, { force: true }), rm(tmpData, { force: true })]);
    throw error;
  }
}
