// Shape rules that the runtime would otherwise enforce: facts ONNX Runtime checks when it loads or
// runs a graph (a mask that broadcasts against heads and lengths, batch sizes that agree, bucket
// counts that give T5's table a meaning), checked here so that a spec `vlmc check` accepts also
// runs, and the error points at the spec line instead of a node deep inside onnxruntime.

import { dimEq, dimToString, type Dim } from "../../ir/dims.js";
import type { Value } from "../../ir/graph.js";
import { shapeToString } from "../../ir/types.js";
import { fail, type OpCtx } from "./ops.js";

/**
 * An attention's q, k and v agree on the batch; its mask broadcasts to [batch, heads, queries,
 * keys]: each of its axes (aligned from the right) is 1 or that size, as the portable Add and ONNX
 * Runtime's attention_bias ([B|1, N|1, S, T]) both need.
 */
export function checkAttentionShapes(q: Value, k: Value, v: Value, heads: number, mask: Value | undefined, ctx: OpCtx) {
  const batch = q.type.shape[0]!;
  for (const [what, t] of [
    ["keys", k],
    ["values", v],
  ] as const) {
    if (!dimEq(t.type.shape[0]!, batch))
      fail(
        "VLM2201",
        `attention: queries ${shapeToString(q.type.shape)} and ${what} ${shapeToString(t.type.shape)} have different batch sizes`,
        ctx.span,
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
        ctx.span,
      );
  });
}

/**
 * T5's bucketing needs at least one exact bucket (half the buckets, half again when bidirectional)
 * and a max_distance beyond the exact ones: otherwise log(max_distance / exact) is 0 or undefined
 * and every far position lands in a NaN bucket.
 */
export function checkRelativeBuckets(buckets: number, maxDistance: number, bidirectional: boolean, ctx: OpCtx) {
  const least = bidirectional ? 4 : 2;
  if (buckets < least)
    fail(
      "VLM2202",
      `relative_position_bucket: ${buckets} buckets are too few; ${bidirectional ? "bidirectional" : "causal"} bucketing needs at least ${least}`,
      ctx.span,
    );
  const exact = Math.floor((bidirectional ? Math.floor(buckets / 2) : buckets) / 2);
  if (maxDistance <= exact)
    fail(
      "VLM2202",
      `relative_position_bucket: max_distance ${maxDistance} must exceed the ${exact} exact buckets of ${buckets} ${bidirectional ? "bidirectional" : "causal"} buckets`,
      ctx.span,
    );
}

/** An embedding looked up with T5's relative position buckets needs a row for every bucket. */
export function checkTableRows(table: string, rows: number, ids: Value, ctx: OpCtx) {
  const producer = ids.producer;
  if (producer?.op !== "RelativePositionBucket") return;
  const buckets = producer.attrs["buckets"] as number;
  if (rows < buckets)
    fail(
      "VLM2203",
      `${table}: ${rows} rows cannot hold the ${buckets} relative position buckets it is looked up with`,
      ctx.span,
    );
}
