// Shape rules that the runtime would otherwise enforce: facts ONNX Runtime checks when it loads or
// runs a graph (a mask that broadcasts against heads and lengths, batch sizes that agree, bucket
// counts that give T5's table a meaning), checked here so that a spec `vlmc check` accepts also
// runs, and the error points at the spec line instead of a node deep inside onnxruntime.

import { dimEq, dimMax, dimToString, symbolsOf, type Dim } from "../../ir/dims.js";
import type { Value } from "../../ir/graph.js";
import { shapeToString } from "../../ir/types.js";
import type { DiagnosticCode } from "../../diagnostics/catalog.js";
import { DiagnosticError, diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";

// Not ops.ts's fail: ops.ts calls these rules, and the two must not import each other.
function fail(code: DiagnosticCode, message: string, span: Span): never {
  throw new DiagnosticError(diagnostic(code, message, span));
}

/**
 * An attention's q, k and v agree on the batch; its mask broadcasts to [batch, heads, queries,
 * keys]: each of its axes (aligned from the right) is 1 or that size, as the portable Add and ONNX
 * Runtime's attention_bias ([B|1, N|1, S, T]) both need.
 */
export function checkAttentionShapes(q: Value, k: Value, v: Value, heads: number, mask: Value | undefined, span: Span) {
  const batch = q.type.shape[0]!;
  for (const [what, t] of [
    ["keys", k],
    ["values", v],
  ] as const) {
    if (!dimEq(t.type.shape[0]!, batch))
      fail(
        "VLM2201",
        `attention: queries ${shapeToString(q.type.shape)} and ${what} ${shapeToString(t.type.shape)} have different batch sizes`,
        span,
      );
  }
  if (!mask) return;
  const full: readonly [string, Dim][] = [
    ["batch", batch],
    ["heads", heads],
    ["queries", q.type.shape[1]!],
    ["keys", k.type.shape[1]!],
  ];
  const shape = mask.type.shape;
  shape.forEach((d, i) => {
    const [name, size] = full[full.length - shape.length + i]!;
    if (d !== 1 && !dimEq(d, size))
      fail(
        "VLM2200",
        `attention: mask ${shapeToString(shape)} does not broadcast to [batch, heads, queries, keys] = ${shapeToString(full.map(([, s]) => s))}: its ${name} axis is ${dimToString(d)}, which must be 1 or ${dimToString(size)}`,
        span,
      );
  });
}

/**
 * T5's bucketing needs at least one exact bucket (half the buckets, half again when bidirectional)
 * and a max_distance beyond the exact ones: otherwise log(max_distance / exact) is 0 or undefined
 * and every far position lands in a NaN bucket.
 */
export function checkRelativeBuckets(buckets: number, maxDistance: number, bidirectional: boolean, span: Span) {
  const least = bidirectional ? 4 : 2;
  if (buckets < least)
    fail(
      "VLM2202",
      `relative_position_bucket: ${buckets} buckets are too few; ${bidirectional ? "bidirectional" : "causal"} bucketing needs at least ${least}`,
      span,
    );
  const exact = Math.floor((bidirectional ? Math.floor(buckets / 2) : buckets) / 2);
  if (maxDistance <= exact)
    fail(
      "VLM2202",
      `relative_position_bucket: max_distance ${maxDistance} must exceed the ${exact} exact buckets of ${buckets} ${bidirectional ? "bidirectional" : "causal"} buckets`,
      span,
    );
}

/**
 * An embedding looked up with indices the compiler made needs a row for each: T5's relative
 * position buckets, and positions `arange(n)` (learned position tables), n at its bound.
 */
export function checkTableRows(
  table: string,
  rows: number,
  ids: Value,
  bounds: ReadonlyMap<string, number>,
  span: Span,
) {
  const producer = ids.producer;
  if (producer?.op === "RelativePositionBucket") {
    const buckets = producer.attrs["buckets"] as number;
    if (rows < buckets)
      fail(
        "VLM2203",
        `${table}: ${rows} rows cannot hold the ${buckets} relative position buckets it is looked up with`,
        span,
      );
  }
  if (producer?.op === "Range") {
    const n = ids.type.shape[0]!;
    const most = dimMax(n, bounds);
    if (most === undefined || most > rows)
      fail(
        "VLM2203",
        most === undefined
          ? `${table}: positions arange(${dimToString(n)}) index a table of ${rows} rows, but ${dimToString(n)} has no bound; declare one (${symbolsOf(n)[0]} <= N) in the input type`
          : `${table}: positions arange(${dimToString(n)}) reach ${most - 1}, past the ${rows} rows of the table`,
        span,
      );
  }
}

/** Rotary positions rotate pairs of channels: a head needs an even size. */
export function checkRotaryHead(headDim: number, rotary: boolean, span: Span) {
  if (rotary && headDim % 2 !== 0)
    fail("VLM2204", `attention: rotary positions need an even head size, got ${headDim}`, span);
}

/**
 * A pooling or convolution window: kernel and stride at least 1, padding from 0 to below the
 * kernel (ONNX pools refuse more; a convolution allows it), and at least one output position.
 */
export function checkWindow(
  op: string,
  sizes: readonly number[],
  kernel: number,
  stride: number,
  padding: number,
  padBelowKernel: boolean,
  span: Span,
) {
  const bad =
    kernel < 1
      ? `kernel ${kernel} must be at least 1`
      : stride < 1
        ? `stride ${stride} must be at least 1`
        : padding < 0
          ? `padding ${padding} must not be negative`
          : padBelowKernel && padding >= kernel
            ? `padding ${padding} must be smaller than the kernel ${kernel}`
            : sizes.some((d) => d + 2 * padding < kernel)
              ? `the input's spatial size ${Math.min(...sizes)} (padded by ${padding}) is smaller than the kernel ${kernel}`
              : undefined;
  if (bad) fail("VLM2206", `${op}: ${bad}`, span);
}

/** argmax over an axis of no elements has no answer (onnxruntime's ArgMax fails at run time). */
export function checkArgmaxAxis(x: Value, axis: number, span: Span) {
  if (x.type.shape[axis] === 0)
    fail(
      "VLM2207",
      `argmax: axis ${axis} of ${shapeToString(x.type.shape)} is empty; there is no largest element`,
      span,
    );
}
