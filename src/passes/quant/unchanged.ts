// The warning for a quantization or precision request that changes nothing: `--quantize int4` on a
// model whose policy keeps every weight in full precision used to write an fp32 model without a
// word, and `--verify` then reported a perfect match.

import { diagnostic } from "../../diagnostics/diagnostic.js";
import type { PassContext } from "../pass.js";

/** Most distinct reasons named in the warning; the rest are in `--report`'s near misses. */
const MAX_REASONS = 3;

/**
 * Warns (VLM3100) that `request` changed nothing, with the distinct reasons the pass gave for the
 * weights it left alone. Asking for the default (no flag, `none`, `fp32`) is no request.
 */
export function warnUnchanged(request: string, ctx: PassContext, reasons: readonly string[]): void {
  if (/(undefined|none|fp32)$/.test(request)) return;
  const distinct = [...new Set(reasons)];
  const why =
    distinct.length === 0
      ? "the model has nothing it applies to"
      : distinct.slice(0, MAX_REASONS).join("; ") + (distinct.length > MAX_REASONS ? "; …" : "");
  ctx.accept(
    diagnostic("VLM3100", `${request} changed nothing in this model: ${why}`, ctx.options.modelSpan, {
      hint: "a policy rule (`policy <component|role|frozen> { quantize: int8 }`) says which components to change; `vlmc compile --report` lists each weight left alone and why",
    }),
  );
}
