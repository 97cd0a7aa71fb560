// The ONNX graph under construction while lowering: nodes named after the IR node they come from,
// deduplicated constant initializers, and run-time sizes for symbolic dimensions computed from the
// graph inputs that carry them.

import { DiagnosticError, diagnostic, message as catalogMessage } from "../diagnostics/diagnostic.js";
import type { DiagnosticCode } from "../diagnostics/catalog.js";
import type { Span } from "../diagnostics/source.js";
import { dimToString, type Dim } from "../ir/dims.js";
import type { Value } from "../ir/graph.js";
import type { DType } from "../ir/types.js";
import { float32ToBfloat16, float32ToFloat16 } from "../numerics/float-convert.js";
import type { OnnxAttribute, OnnxDataType, OnnxNode, OnnxTensor } from "../onnx/onnx-writer.js";

export const int = (value: number): OnnxAttribute => ({ kind: "int", value });
export const ints = (value: readonly number[]): OnnxAttribute => ({ kind: "ints", value: [...value] });
export const float = (value: number): OnnxAttribute => ({ kind: "float", value });

const ONNX_DTYPES: Partial<Record<DType, OnnxDataType>> = {
  f32: "float32",
  f16: "float16",
  bf16: "bfloat16",
  i64: "int64",
  i32: "int32",
  i8: "int8",
  u8: "uint8",
  bool: "bool",
};

/** TensorProto.DataType codes, for Cast's `to`. */
export const ONNX_TYPE_CODES: Readonly<Record<DType, number>> = {
  f32: 1,
  u8: 2,
  i8: 3,
  i32: 6,
  i64: 7,
  bool: 9,
  f16: 10,
  f64: 11,
  bf16: 16,
};

export function fail(code: DiagnosticCode, message: string, span?: Span): never {
  throw new DiagnosticError(diagnostic(code, message, span));
}

/** The writer's element type for an IR dtype; f64 has none (the writer has no DOUBLE tensors). */
export function onnxDataType(dtype: DType, what: string, span?: Span): OnnxDataType {
  const t = ONNX_DTYPES[dtype];
  if (t === undefined)
    fail("VLM2106", `${what} is ${dtype}, which the portable ONNX target cannot store; cast it to f32`, span);
  return t;
}

/** Little-endian bytes of `values` as `dtype` (integers truncate, bool is non-zero). */
export function encodeValues(values: ArrayLike<number>, dtype: OnnxDataType): Uint8Array {
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case "float32":
      return view(Float32Array.from(values));
    case "float16":
      return view(float32ToFloat16(Float32Array.from(values)));
    case "bfloat16":
      return view(float32ToBfloat16(Float32Array.from(values)));
    case "int64":
      return view(BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v)))));
    case "int32":
      return view(Int32Array.from(values));
    case "int8":
      return view(Int8Array.from(values));
    case "uint8":
      return view(Uint8Array.from(values));
    case "bool":
      return Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0));
  }
}

/** Where the nodes being emitted belong: a name prefix, the DSL location, and what was emitted. */
interface Scope {
  readonly base: string;
  readonly doc: string | undefined;
  readonly span: Span | undefined;
  readonly counts: Map<string, number>;
  readonly emitted: OnnxNode[];
}

export class OnnxEmitter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly initializerNames = new Set<string>();
  private readonly shared = new Map<string, string>();
  /** Each symbol's first (input, axis) where a graph input has exactly that size. */
  private readonly symbolSources = new Map<string, { input: string; axis: number }>();
  private scope: Scope = { base: "", doc: undefined, span: undefined, counts: new Map(), emitted: [] };

  constructor(inputs: readonly Value[]) {
    for (const v of inputs) {
      if (v.source.kind !== "input") continue;
      const name = v.source.name;
      v.type.shape.forEach((d, axis) => {
        if (typeof d === "number" || d.size !== 1) return;
        const [[key, coefficient]] = [...d];
        if (coefficient === 1 && !key.includes("*") && !this.symbolSources.has(key))
          this.symbolSources.set(key, { input: name, axis });
      });
    }
  }

  /** The DSL span of the IR node being lowered, for diagnostics. */
  get span(): Span | undefined {
    return this.scope.span;
  }

  /** Emits everything `body` emits under `base`, with `doc` as each node's doc_string; returns those nodes. */
  within<T>(
    base: string,
    doc: string | undefined,
    span: Span | undefined,
    body: () => T,
  ): { result: T; emitted: OnnxNode[] } {
    const outer = this.scope;
    this.scope = { base, doc, span, counts: new Map(), emitted: [] };
    try {
      return { result: body(), emitted: this.scope.emitted };
    } finally {
      this.scope = outer;
    }
  }

  /** One node of the standard domain (or `domain`); returns its output. Nodes are named `${base}/${op}`, `${base}/${op}_1`, …. */
  op(
    type: string,
    inputs: readonly (string | undefined)[],
    attributes: Record<string, OnnxAttribute> = {},
    domain = "",
  ): string {
    return this.opOutputs(type, inputs, attributes, [0], domain)[0]!;
  }

  /**
   * One node whose outputs at the indices `outputs` (ascending) are used, e.g. output 3 of
   * SkipLayerNormalization; returns their names in that order. Unused outputs before the last
   * used one are "" as ONNX requires.
   */
  opOutputs(
    type: string,
    inputs: readonly (string | undefined)[],
    attributes: Record<string, OnnxAttribute>,
    outputs: readonly number[],
    domain = "",
  ): string[] {
    const n = this.scope.counts.get(type) ?? 0;
    this.scope.counts.set(type, n + 1);
    const name = `${this.scope.base}/${type}${n === 0 ? "" : `_${n}`}`;
    // Optional inputs: trailing ones are dropped, inner ones become "" as ONNX requires.
    const given = [...inputs];
    while (given.length > 0 && given[given.length - 1] === undefined) given.pop();
    const names = Array.from({ length: outputs[outputs.length - 1]! + 1 }, (_, i) =>
      outputs.includes(i) ? `${name}_output_${i}` : "",
    );
    const node: OnnxNode = { op: type, name, inputs: given.map((i) => i ?? ""), outputs: names };
    if (domain !== "") node.domain = domain;
    if (Object.keys(attributes).length > 0) node.attributes = attributes;
    if (this.scope.doc !== undefined) node.docString = this.scope.doc;
    this.nodes.push(node);
    this.scope.emitted.push(node);
    return outputs.map((i) => names[i]!);
  }

  cast(x: string, from: DType, to: DType): string {
    return from === to ? x : this.op("Cast", [x], { to: int(ONNX_TYPE_CODES[to]) });
  }

  /** Adds an initializer once; later calls with the same name reuse it. */
  initializer(name: string, dataType: OnnxDataType, dims: readonly number[], bytes: () => Uint8Array): string {
    if (!this.initializerNames.has(name)) {
      this.initializerNames.add(name);
      this.initializers.push({ name, dataType, dims: [...dims], bytes });
    }
    return name;
  }

  /** A small constant, named after its contents so equal constants share one initializer. */
  constant(values: readonly number[], dtype: DType, dims: readonly number[] = []): string {
    const t = onnxDataType(dtype, "a constant", this.span);
    const uniform = values.length > 1 && values.every((v) => v === values[0]);
    const shown = uniform ? `${values[0]}` : values.join(",");
    const name = `/const/${dtype}${dims.length > 0 ? `[${dims.join(",")}]` : ""}/${shown}`;
    return this.initializer(name, t, dims, () => encodeValues(values, t));
  }

  scalar(value: number, dtype: DType): string {
    return this.constant([value], dtype);
  }

  /** A 1-D int64 constant (shapes, axes, slice bounds). */
  int64s(values: readonly number[]): string {
    return this.constant(values, "i64", [values.length]);
  }

  /** Nodes computed once per graph (sizes of symbols), emitted at their first use under `base`. */
  once(base: string, build: () => string): string {
    let name = this.shared.get(base);
    if (name === undefined) {
      name = this.within(base, undefined, this.span, build).result;
      this.shared.set(base, name);
    }
    return name;
  }

  /** `x`'s size on `axis` as an int64 [1] tensor. */
  sizeOf(x: string, axis: number): string {
    return this.op("Shape", [x], { start: int(axis), end: int(axis + 1) });
  }

  /** A run-time int64 [1] tensor for a dimension: a constant, or computed from the graph inputs. */
  dim(d: Dim): string {
    if (typeof d === "number") return this.int64s([d]);
    return this.once(`/dims/${dimToString(d).replace(/ /g, "")}`, () => {
      let sum: string | undefined;
      for (const [monomial, coefficient] of d) {
        let term: string | undefined;
        for (const s of monomial.split("*").filter((x) => x !== "")) {
          const size = this.symbol(s);
          term = term === undefined ? size : this.op("Mul", [term, size]);
        }
        if (term === undefined) term = this.int64s([coefficient]);
        else if (coefficient !== 1) term = this.op("Mul", [term, this.int64s([coefficient])]);
        sum = sum === undefined ? term : this.op("Add", [sum, term]);
      }
      return sum!;
    });
  }

  private symbol(s: string): string {
    const source = this.symbolSources.get(s);
    if (!source) fail("VLM2325", catalogMessage("VLM2325", { symbol: s }), this.span);
    return this.once(`/dims/${s}`, () => this.sizeOf(source.input, source.axis));
  }

  /** An int64 shape tensor: a constant when every dim is static, else a Concat of run-time sizes. */
  shape(dims: readonly Dim[]): string {
    if (dims.every((d): d is number => typeof d === "number")) return this.int64s(dims);
    return this.op(
      "Concat",
      dims.map((d) => this.dim(d)),
      { axis: int(0) },
    );
  }

  /** An int64 [1] tensor as a scalar (Range takes scalars). */
  toScalar(x: string): string {
    return this.op("Squeeze", [x, this.int64s([0])]);
  }
}
