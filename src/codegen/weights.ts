// Loading safetensors checkpoints into a module's parameters. A source covers the whole model or
// one component (`--weights vision=PATH`, or `weights vision from "x.safetensors" prefix "v."` in
// the DSL); loading is strict like PyTorch's load_state_dict(strict=True): every parameter the
// source covers must be present with its exact shape, and every tensor in the file must belong to
// a parameter. Headers are checked up front; tensor data is read only when it is written out.

import * as path from "node:path";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../diagnostics/source.js";
import type { IrModule, KeyRule, Param } from "../ir/graph.js";
import { shapeToString } from "../ir/types.js";
import { CONFIG_FILE, CheckpointError, openCheckpoint, type Checkpoint } from "./checkpoint.js";
import { checkConfig } from "./hf-config.js";
import type { SafetensorsTensorInfo } from "./safetensors.js";
import type { Allocate } from "../numerics/scratch.js";

export interface WeightSource {
  /** Component the checkpoint belongs to; undefined for the whole model. */
  readonly component: string | undefined;
  /** A safetensors file, a shard index, or a Hugging Face checkpoint folder. */
  readonly path: string;
  /**
   * How the checkpoint's keys map to parameter names (relative to the component). No rules: every
   * key as it is. With rules, a key takes the rename of the longest prefix it starts with, and keys
   * no rule matches belong to other sources.
   */
  readonly rules: readonly KeyRule[];
  /** The `weights` declaration it comes from, for diagnostics. */
  readonly span?: Span;
}

/** `PATH` or `COMPONENT=PATH` (the component an identifier, so paths with `=` still work). */
export function parseWeightSpec(spec: string): WeightSource {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(spec);
  return m ? { component: m[1], path: m[2]!, rules: [] } : { component: undefined, path: spec, rules: [] };
}

/**
 * The sources to load: the module's `weights` declarations with a path (resolved against the
 * declaring file's folder), then the command line's. A command-line path takes the key maps of the
 * layout declarations (those without `from`) for its target, so `--weights DIR` loads a Hugging
 * Face folder with the layout the spec states: the declarations say which components the
 * checkpoint holds (the others keep their initialisers, as with `--weights COMPONENT=PATH`). A
 * target without layout declarations loads as is.
 */
export function weightSources(module: IrModule, modelFile: string, cli: readonly WeightSource[]): WeightSource[] {
  const declared = module.weights.map((w) => ({
    component: w.target,
    path: w.path === undefined ? undefined : path.resolve(path.dirname(modelFile), w.path),
    rules: w.rules,
    span: w.span,
  }));
  const out: WeightSource[] = declared.flatMap((w) => (w.path === undefined ? [] : [{ ...w, path: w.path }]));
  for (const spec of cli) {
    const layouts = declared.filter(
      (w) => w.path === undefined && (spec.component === undefined || w.component === spec.component),
    );
    if (layouts.length === 0) {
      out.push(spec);
      continue;
    }
    out.push(...layouts.map((w) => ({ ...w, path: spec.path })));
  }
  return out;
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
  const assigned = new Map<Param, { checkpoint: Checkpoint; key: string }>();
  // A folder named by several sources (one per component) is opened once.
  const opened = new Map<string, Checkpoint>();
  const configChecked = new Set<string>();
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
          source.span,
        ),
      );
      continue;
    }
    let checkpoint = opened.get(source.path);
    if (!checkpoint) {
      try {
        checkpoint = openCheckpoint(source.path);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        error(diagnostic(e.code, e.message, source.span));
        opened.set(source.path, FAILED);
        continue;
      }
      opened.set(source.path, checkpoint);
    }
    if (checkpoint === FAILED) continue;
    // The config describes the components this source loads (a LLaVA folder read for its vision
    // tower alone says nothing about the language model beside it), each compared once.
    const covered = module.components.filter(
      (c) =>
        (source.component === undefined || c.name === source.component) &&
        !configChecked.has(`${source.path}\0${c.name}`),
    );
    for (const c of covered) configChecked.add(`${source.path}\0${c.name}`);
    if (checkpoint.config) checkConfig(checkpoint.config, path.join(source.path, CONFIG_FILE), covered, error);
    const matched = matchSource(module, source, checkpoint, error);
    for (const [p, key] of matched) assigned.set(p, { checkpoint, key });
  }
  const close = () => {
    for (const c of opened.values()) c.close();
  };
  if (failed) {
    close();
    return undefined;
  }
  return {
    values: (p, allocate) => {
      const at = assigned.get(p);
      return at?.checkpoint.readFloat32(at.key, allocate);
    },
    close,
  };
}

/** Stands for a path that failed to open, so it is reported once. */
const FAILED: Checkpoint = {
  path: "",
  tensors: new Map(),
  config: undefined,
  readBytes: () => new Uint8Array(),
  readFloat32: () => new Float32Array(),
  close: () => {},
};

/** The parameter name (relative to the source's component) a key maps to; null: not weights; undefined: not this source's. */
export function mapKey(rules: readonly KeyRule[], key: string): string | null | undefined {
  let best: { from: string; to: string | null } | undefined;
  let renames = 0;
  for (const r of rules) {
    if (r.kind !== "rename") continue;
    renames++;
    if (key.startsWith(r.from) && (!best || r.from.length > best.from.length)) best = r;
  }
  if (renames === 0) return key;
  if (!best) return undefined;
  return best.to === null ? null : best.to + key.slice(best.from.length);
}

/** Checks one checkpoint against the parameters its source covers; returns parameter → key for the good ones. */
function matchSource(
  module: IrModule,
  source: WeightSource,
  checkpoint: Checkpoint,
  error: (d: Diagnostic) => void,
): Map<Param, string> {
  const owned =
    source.component === undefined ? module.params : module.params.filter((p) => p.component === source.component);
  // A component's parameters are named without the component's own name: `vision.x.weight` → `x.weight`.
  const strip = source.component === undefined ? 0 : source.component.length + 1;
  const expected = new Map(owned.map((p) => [p.name.slice(strip), p]));
  const where = `${checkpoint.path}${source.component !== undefined ? ` (component ${source.component})` : ""}`;

  const matched = new Map<Param, string>();
  const keyOf = new Map<string, string>(); // parameter name → the key that filled it
  const unexpected: string[] = [];
  const misShaped: string[] = [];
  const badDtype: string[] = [];
  const twice: string[] = [];
  const rejected = new Set<string>(); // present, but reported as mis-shaped or not floating point
  for (const [key, info] of checkpoint.tensors) {
    const name = mapKey(source.rules, key);
    if (name === undefined || name === null) continue;
    const p = expected.get(name);
    if (!p && !isDerivedBuffer(key, info)) unexpected.push(key === name ? key : `${key} (as ${name})`);
    else if (!p) continue;
    else if (keyOf.has(name)) twice.push(`${name} ← ${keyOf.get(name)} and ${key}`);
    else if (!FLOAT_DTYPES.has(info.dtype)) {
      badDtype.push(`${key} (${info.dtype})`);
      rejected.add(name);
    } else if (shapeToString(info.shape) !== shapeToString(p.type.shape)) {
      misShaped.push(`${key}: file ${shapeToString(info.shape)}, model ${shapeToString(p.type.shape)}`);
      rejected.add(name);
    } else {
      matched.set(p, key);
      keyOf.set(name, key);
    }
  }
  // A tied parameter absent from the checkpoint shares its source's tensor (a head tied to the embeddings).
  for (const rule of source.rules) {
    if (rule.kind !== "tie") continue;
    const p = expected.get(rule.param);
    const q = expected.get(rule.source);
    if (!p || !q) {
      const unknown = !p ? rule.param : rule.source;
      error(
        diagnostic(
          "VLM4208",
          `tie "${rule.param}" = "${rule.source}": ${source.component ?? module.name} has no parameter ${unknown}`,
          source.span,
        ),
      );
      continue;
    }
    const key = matched.get(q);
    if (keyOf.has(rule.param) || key === undefined) continue;
    if (shapeToString(p.type.shape) !== shapeToString(q.type.shape)) {
      misShaped.push(
        `${rule.param} tied to ${key}: ${shapeToString(q.type.shape)}, model ${shapeToString(p.type.shape)}`,
      );
      rejected.add(rule.param);
    } else {
      matched.set(p, key);
      keyOf.set(rule.param, key);
    }
  }
  const missing = [...expected.keys()].filter((name) => !keyOf.has(name) && !rejected.has(name));

  if (missing.length > 0)
    error(
      diagnostic("VLM4002", `${where} lacks ${plural(missing.length, "weight")}: ${listNames(missing)}`, source.span, {
        hint: hintFor(checkpoint, missing),
      }),
    );
  if (twice.length > 0)
    error(
      diagnostic(
        "VLM4207",
        `${where}: ${plural(twice.length, "parameter")} would be read from two keys: ${listNames(twice)}`,
        source.span,
      ),
    );
  if (unexpected.length > 0) {
    error(
      diagnostic(
        "VLM4003",
        `${where} has ${plural(unexpected.length, "tensor")} the model does not declare: ${listNames(unexpected)}`,
        source.span,
        {
          hint:
            source.rules.length === 0
              ? 'a checkpoint of a larger model loads with a key map (`weights vision from "x.safetensors" { "vision_model.": "" }`)'
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
        source.span,
      ),
    );
  if (badDtype.length > 0)
    error(
      diagnostic(
        "VLM4005",
        `${where} has ${plural(badDtype.length, "tensor")} that are not floating point: ${listNames(badDtype)}`,
        source.span,
      ),
    );
  return matched;
}

/** For a missing weight whose name some key ends with, the key map that would load it. */
function hintFor(checkpoint: Checkpoint, missing: readonly string[]): string | undefined {
  const name = missing[0]!;
  for (const key of checkpoint.tensors.keys())
    if (key !== name && key.endsWith(`.${name}`)) {
      const from = key.slice(0, key.length - name.length);
      return `the checkpoint has ${key}: map its level with { "${from}": "" }`;
    }
  return undefined;
}
