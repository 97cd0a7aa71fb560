// Checkpoints as users have them: one safetensors file, or a Hugging Face folder holding
// `model.safetensors` or `model.safetensors.index.json` and its shards, beside `config.json`.
// Opening reads headers only (every shard's, so a broken folder fails before anything is written);
// tensor bytes are read on demand, one tensor at a time, so memory stays near the largest tensor.
// This is the loader the compiler and the package writer share: open a path, list tensors by
// name with dtype and shape, read one.

import fs from "node:fs";
import path from "node:path";
import type { DiagnosticCode } from "../diagnostics/catalog.js";
import type { Allocate } from "../numerics/scratch.js";
import { openSafetensors, SafetensorsError, type SafetensorsFile, type SafetensorsTensorInfo } from "./safetensors.js";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";
export const CONFIG_FILE = "config.json";

/** A tensor of the checkpoint, with the shard that holds it. */
export interface CheckpointTensor extends SafetensorsTensorInfo {
  readonly file: string;
}

export interface Checkpoint {
  /** What the user named: a file or a folder. */
  readonly path: string;
  /** Every tensor, by key, across all shards. */
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  /** The folder's config.json, when there is one. */
  readonly config: Readonly<Record<string, unknown>> | undefined;
  /** Raw little-endian bytes of one tensor. */
  readBytes(key: string): Uint8Array;
  /** A float tensor as float32, read into memory from `allocate` (see SafetensorsFile.readFloat32). */
  readFloat32(key: string, allocate?: Allocate): Float32Array;
  close(): void;
}

/** Why a checkpoint could not be opened; `code` is the diagnostic to report. */
export class CheckpointError extends Error {
  constructor(
    readonly code: DiagnosticCode,
    message: string,
  ) {
    super(message);
    this.name = "CheckpointError";
  }
}

/**
 * Opens a safetensors file, a shard index, or a folder holding either (`model.safetensors` first,
 * as transformers looks for it). Throws CheckpointError for anything wrong with the files.
 */
export function openCheckpoint(target: string): Checkpoint {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (e) {
    throw new CheckpointError("VLM4001", `invalid weights file ${target}: cannot read (${(e as Error).message})`);
  }
  if (!stat.isDirectory()) {
    const config = readConfig(path.dirname(target), false);
    return target.endsWith(".index.json")
      ? openSharded(target, target, config)
      : fromShards(target, [openShard(target)], config);
  }
  const config = readConfig(target, true);
  if (fs.existsSync(path.join(target, SINGLE_FILE)))
    return fromShards(target, [openShard(path.join(target, SINGLE_FILE))], config);
  if (fs.existsSync(path.join(target, INDEX_FILE))) return openSharded(target, path.join(target, INDEX_FILE), config);
  const present = fs.readdirSync(target).sort();
  const legacy = present.find((f) => /^pytorch_model.*\.bin$|\.pt$|\.pth$|\.ckpt$/.test(f));
  throw new CheckpointError(
    "VLM4200",
    `checkpoint folder ${target} holds neither ${SINGLE_FILE} nor ${INDEX_FILE}` +
      (legacy
        ? ` (it holds ${legacy}: a pickled PyTorch checkpoint, which vlmc does not read; save it with safetensors)`
        : ` (it holds: ${present.slice(0, 10).join(", ") || "nothing"})`),
  );
}

function openShard(file: string): SafetensorsFile {
  try {
    return openSafetensors(file);
  } catch (e) {
    const reason = e instanceof SafetensorsError ? e.message : `${file}: cannot read (${(e as Error).message})`;
    throw new CheckpointError("VLM4001", `invalid weights file ${reason}`);
  }
}

/**
 * A folder's config.json (for a file, the one beside it, if any). Only a folder's own config is
 * required to be valid: a stray config.json beside a loose .safetensors file may describe something else.
 */
function readConfig(folder: string, strict: boolean): Record<string, unknown> | undefined {
  const file = path.join(folder, CONFIG_FILE);
  if (!fs.existsSync(file)) return undefined;
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    if (isObject(parsed)) return parsed;
  } catch {
    // reported below
  }
  if (!strict) return undefined;
  throw new CheckpointError("VLM4201", `${file} is not a JSON object`);
}

/** Reads a shard index (`{"weight_map": {key: file}}`), checks it and opens each shard once. */
function openSharded(shown: string, indexFile: string, config: Record<string, unknown> | undefined): Checkpoint {
  const folder = path.dirname(indexFile);
  let weightMap: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(indexFile, "utf8"));
    if (!isObject(parsed) || !isObject(parsed["weight_map"])) throw new Error("no weight_map object");
    weightMap = parsed["weight_map"];
  } catch (e) {
    throw new CheckpointError("VLM4201", `invalid shard index ${indexFile}: ${(e as Error).message}`);
  }
  const byFile = new Map<string, string[]>();
  for (const [key, file] of Object.entries(weightMap)) {
    if (typeof file !== "string" || file === "")
      throw new CheckpointError("VLM4201", `invalid shard index ${indexFile}: ${key} maps to ${JSON.stringify(file)}`);
    const resolved = path.resolve(folder, file);
    if (path.isAbsolute(file) || path.relative(folder, resolved).split(path.sep)[0] === "..")
      throw new CheckpointError(
        "VLM4202",
        `shard index ${indexFile} names ${JSON.stringify(file)} (for ${key}), which is outside the folder`,
      );
    byFile.set(file, [...(byFile.get(file) ?? []), key]);
  }
  const shards: SafetensorsFile[] = [];
  try {
    for (const [file, keys] of [...byFile].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const full = path.join(folder, file);
      if (!fs.existsSync(full))
        throw new CheckpointError(
          "VLM4203",
          `shard ${file} named by ${indexFile} (for ${keys.length} tensors, e.g. ${keys[0]}) is missing`,
        );
      const shard = openShard(full);
      shards.push(shard);
      const absent = keys.filter((k) => !shard.tensors.has(k));
      if (absent.length > 0)
        throw new CheckpointError(
          "VLM4205",
          `shard index ${indexFile} puts ${absent.slice(0, 5).join(", ")}${absent.length > 5 ? ` (and ${absent.length - 5} more)` : ""} in ${file}, which does not hold ${absent.length === 1 ? "it" : "them"}`,
        );
    }
    return fromShards(shown, shards, config, indexFile);
  } catch (e) {
    for (const s of shards) s.close();
    throw e;
  }
}

/** Joins shards into one checkpoint; a key held by two shards is ambiguous and refused. */
function fromShards(
  shown: string,
  shards: SafetensorsFile[],
  config: Record<string, unknown> | undefined,
  index?: string,
): Checkpoint {
  const tensors = new Map<string, CheckpointTensor>();
  const owner = new Map<string, SafetensorsFile>();
  for (const shard of shards)
    for (const [key, info] of shard.tensors) {
      const before = tensors.get(key);
      if (before) {
        for (const s of shards) s.close();
        throw new CheckpointError(
          "VLM4204",
          `${key} is in two shards of ${index ?? shown}: ${path.basename(before.file)} and ${path.basename(shard.path)}`,
        );
      }
      tensors.set(key, { ...info, file: shard.path });
      owner.set(key, shard);
    }
  const shardOf = (key: string): SafetensorsFile => {
    const shard = owner.get(key);
    if (!shard) throw new SafetensorsError("unknown-tensor", shown, `no tensor named ${JSON.stringify(key)}`);
    return shard;
  };
  return {
    path: shown,
    tensors,
    config,
    readBytes: (key) => shardOf(key).readBytes(key),
    readFloat32: (key, allocate) => shardOf(key).readFloat32(key, allocate),
    close: () => {
      for (const s of shards) s.close();
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
