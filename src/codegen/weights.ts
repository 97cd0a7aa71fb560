// Loading safetensors checkpoints into a module's parameters. A source covers the whole model or
// one component (`--weights vision=PATH`, or `weights vision from "x.safetensors" prefix "v."` in
// the DSL); loading is strict like PyTorch's load_state_dict(strict=True): every parameter the
// source covers must be present with its exact shape, and every tensor in the file must belong to
// a parameter. Headers are checked up front; tensor data is read only when it is written out.

import * as path from "node:path";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { IrModule, Param } from "../ir/graph.js";
import { shapeToString } from "../ir/types.js";
import { openSafetensors, SafetensorsError, type SafetensorsFile, type SafetensorsTensorInfo } from "./safetensors.js";
import type { Allocate } from "../numerics/scratch.js";

export interface WeightSource {
  /** Component the file belongs to; undefined for the whole model. */
  readonly component: string | undefined;
  readonly path: string;
  /** Prefix of the file's keys for this source; only keys that start with it are considered. */
  readonly prefix: string | undefined;
}

/** `PATH` or `COMPONENT=PATH` (the component an identifier, so paths with `=` still work). */
export function parseWeightSpec(spec: string): WeightSource {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(spec);
  return m
    ? { component: m[1], path: m[2]!, prefix: undefined }
    : { component: undefined, path: spec, prefix: undefined };
}

/** The module's `weights` declarations, with paths resolved against the declaring file's folder. */
export function declaredWeightSources(module: IrModule, modelFile: string): WeightSource[] {
  return module.weights.map((w) => ({
    component: w.target,
    path: path.resolve(path.dirname(modelFile), w.path),
    prefix: w.prefix,
  }));
}

export interface LoadedWeights {
  /** The checkpoint's values of a parameter as float32 (read into memory from `allocate`), or undefined when no source covers it. */
  values(p: Param, allocate?: Allocate): Float32Array | undefined;
  close(): void;
}

const FLOAT_DTYPES = new Set(["F32", "F16", "BF16", "F64"]);
/** Diagnostics list at most this many names, then a count. */
const LIST_LIMIT = 10;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, LIST_LIMIT).join(", ");
  return names.length > LIST_LIMIT ? `${shown} (and ${names.length - LIST_LIMIT} more)` : shown;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Buffers that PyTorch checkpoints store beside the parameters but that are no weights: computed
 * from the configuration (position and token-type ids, GPT-2's causal mask and its fill value,
 * rotary frequencies), or used only in training (BatchNorm's step count, which steers the
 * running-average momentum). transformers skips the same keys on load
 * (`_keys_to_ignore_on_load_unexpected`). Each is recognised by its name and its form, so a real
 * weight that happens to share a name (a 1-D `attn.bias`) is still reported as unexpected.
 */
const DERIVED_BUFFERS: readonly { readonly name: RegExp; readonly form: (info: SafetensorsTensorInfo) => boolean }[] = [
  { name: /(^|\.)num_batches_tracked$/, form: (t) => t.shape.length === 0 },
  { name: /(^|\.)(position_ids|token_type_ids)$/, form: (t) => INTEGER_DTYPES.has(t.dtype) },
  { name: /(^|\.)attn\.bias$/, form: (t) => t.shape.length === 4 },
  { name: /(^|\.)attn\.masked_bias$/, form: (t) => t.shape.length === 0 },
  { name: /(^|\.)rotary_emb\.inv_freq$/, form: (t) => t.shape.length === 1 },
];

const INTEGER_DTYPES = new Set(["I64", "I32", "I16", "I8", "U8"]);

function isDerivedBuffer(key: string, info: SafetensorsTensorInfo): boolean {
  return DERIVED_BUFFERS.some((b) => b.name.test(key) && b.form(info));
}

/**
 * Opens every source and matches its tensors to parameters. Later sources override earlier ones
 * for the parameters they cover (declarations first, then command-line specs). Problems are
 * reported through `report`; the result is undefined when any source failed.
 */
export function loadWeights(
  module: IrModule,
  sources: readonly WeightSource[],
  report: (d: Diagnostic) => void,
): LoadedWeights | undefined {
  const assigned = new Map<Param, { file: SafetensorsFile; key: string }>();
  const files: SafetensorsFile[] = [];
  let failed = false;
  const error = (d: Diagnostic) => {
    failed = true;
    report(d);
  };
  for (const source of sources) {
    if (source.component !== undefined && !module.components.some((c) => c.name === source.component)) {
      const known = module.components.map((c) => c.name).join(", ") || "none";
      error(
        diagnostic(
          "VLM2001",
          `weights for "${source.component}": model ${module.name} has no such component (components: ${known})`,
        ),
      );
      continue;
    }
    let file: SafetensorsFile;
    try {
      file = openSafetensors(source.path);
    } catch (e) {
      const reason =
        e instanceof SafetensorsError
          ? e.message
          : `${source.path}: cannot read (${e instanceof Error ? e.message : String(e)})`;
      error(diagnostic("VLM4001", `invalid weights file ${reason}`));
      continue;
    }
    files.push(file);
    const matched = matchSource(module, source, file, error);
    for (const [p, key] of matched) assigned.set(p, { file, key });
  }
  if (failed) {
    for (const f of files) f.close();
    return undefined;
  }
  return {
    values: (p, allocate) => {
      const at = assigned.get(p);
      return at?.file.readFloat32(at.key, allocate);
    },
    close: () => files.forEach((f) => f.close()),
  };
}

/** Checks one file against the parameters its source covers; returns parameter → key for the good ones. */
function matchSource(
  module: IrModule,
  source: WeightSource,
  file: SafetensorsFile,
  error: (d: Diagnostic) => void,
): Map<Param, string> {
  const prefix = source.prefix ?? "";
  const owned =
    source.component === undefined ? module.params : module.params.filter((p) => p.component === source.component);
  // A component's parameters are keyed without the component's own name: `vision.x.weight` → `x.weight`.
  const strip = source.component === undefined ? 0 : source.component.length + 1;
  const expected = new Map(owned.map((p) => [prefix + p.name.slice(strip), p]));
  const where = `${file.path}${source.component !== undefined ? ` (component ${source.component})` : ""}`;

  const matched = new Map<Param, string>();
  const unexpected: string[] = [];
  const misShaped: string[] = [];
  const badDtype: string[] = [];
  for (const [key, info] of file.tensors) {
    if (!key.startsWith(prefix)) continue;
    const p = expected.get(key);
    if (!p && !isDerivedBuffer(key, info)) unexpected.push(key);
    else if (!p) continue;
    else if (!FLOAT_DTYPES.has(info.dtype)) badDtype.push(`${key} (${info.dtype})`);
    else if (shapeToString(info.shape) !== shapeToString(p.type.shape))
      misShaped.push(`${key}: file ${shapeToString(info.shape)}, model ${shapeToString(p.type.shape)}`);
    else matched.set(p, key);
  }
  const missing = [...expected].filter(([key]) => !file.tensors.has(key)).map(([key]) => key);

  if (missing.length > 0)
    error(diagnostic("VLM4002", `${where} lacks ${plural(missing.length, "weight")}: ${listNames(missing)}`));
  if (unexpected.length > 0) {
    error(
      diagnostic(
        "VLM4003",
        `${where} has ${plural(unexpected.length, "tensor")} the model does not declare: ${listNames(unexpected)}`,
        undefined,
        {
          hint:
            prefix === ""
              ? 'a checkpoint of a larger model loads with a key prefix (`weights vision from "x.safetensors" prefix "vision_model."`)'
              : undefined,
        },
      ),
    );
  }
  if (misShaped.length > 0)
    error(
      diagnostic(
        "VLM4004",
        `${where} has ${plural(misShaped.length, "tensor")} of the wrong shape: ${listNames(misShaped)}`,
      ),
    );
  if (badDtype.length > 0)
    error(
      diagnostic(
        "VLM4005",
        `${where} has ${plural(badDtype.length, "tensor")} that are not floating point: ${listNames(badDtype)}`,
      ),
    );
  return matched;
}
