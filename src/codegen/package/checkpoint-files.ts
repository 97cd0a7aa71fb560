// The files of a Hugging Face checkpoint folder that a generation package carries beside its graphs
// (tokenizer, processor, chat template, configs) and the token ids read from them: eos, bos and pad
// from generation_config.json, then config.json (or its text_config), then the token strings of
// tokenizer_config.json looked up in tokenizer.json. Nothing is guessed: a missing eos is an error.

import * as fs from "node:fs";
import * as path from "node:path";
import { diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";

/** Copied into the package when present. */
const CARRIED = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "preprocessor_config.json",
  "processor_config.json",
  "chat_template.json",
  "chat_template.jinja",
];

export interface CheckpointFiles {
  readonly dir: string;
  /** File names to copy, in CARRIED's order. */
  readonly files: readonly string[];
  readonly bos: number | undefined;
  readonly eos: readonly number[];
  readonly pad: number | undefined;
  /** config.json's image token (image_token_index / image_token_id), when it states one. */
  readonly imageToken: number | undefined;
  /** generation_config.json's sampling defaults, for genai_config's `search`. */
  readonly generation: Readonly<Record<string, unknown>>;
  /** LLaVA-NeXT's AnyRes facts as the checkpoint states them, for the compiler to compare with the spec. */
  readonly anyres: {
    /** config.json's image_grid_pinpoints. */
    readonly pinpoints: unknown;
    /** The image processor's image_grid_pinpoints and the file that holds it. */
    readonly processorPinpoints: unknown;
    readonly processorFile: string | undefined;
    /** config.json's vision_config image_size and patch_size. */
    readonly imageSize: number | undefined;
    readonly patchSize: number | undefined;
  };
}

type Json = Record<string, unknown>;

function readJson(file: string): Json | string | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : `${file} is not a JSON object`;
  } catch (e) {
    return `${file}: ${e instanceof Error ? e.message : String(e)}`;
  }
}

const ids = (v: unknown): number[] | undefined =>
  Number.isInteger(v)
    ? [v as number]
    : Array.isArray(v) && v.length > 0 && v.every(Number.isInteger)
      ? (v as number[])
      : undefined;

/** A special token's string in tokenizer_config.json (a string or {content}). */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Json)["content"] === "string")
    return (v as Json)["content"] as string;
  return undefined;
}

/** The id of a token string in tokenizer.json: its added tokens, then the model's vocabulary. */
function tokenId(tokenizer: Json | undefined, text: string | undefined): number | undefined {
  if (!tokenizer || text === undefined) return undefined;
  const added = tokenizer["added_tokens"];
  if (Array.isArray(added))
    for (const t of added as Json[]) if (t["content"] === text && Number.isInteger(t["id"])) return t["id"] as number;
  const vocab = (tokenizer["model"] as Json | undefined)?.["vocab"];
  if (vocab && typeof vocab === "object" && !Array.isArray(vocab)) {
    const id = (vocab as Json)[text];
    if (Number.isInteger(id)) return id as number;
  }
  return undefined;
}

/** Reads the folder; problems are VLM4301 diagnostics naming the missing or broken files. */
export function readCheckpointFiles(dir: string): CheckpointFiles | Diagnostic[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    return [diagnostic("VLM4301", `checkpoint folder ${dir} does not exist or is not a folder`)];
  const has = (name: string) => fs.existsSync(path.join(dir, name));
  const missing = [
    ...(has("config.json") ? [] : ["config.json"]),
    ...(has("tokenizer_config.json") ? [] : ["tokenizer_config.json"]),
    ...(has("tokenizer.json") || has("tokenizer.model") ? [] : ["tokenizer.json (or tokenizer.model)"]),
  ];
  if (missing.length > 0)
    return [
      diagnostic(
        "VLM4301",
        `checkpoint folder ${dir} lacks ${missing.join(", ")}; a package carries the tokenizer and takes its token ids from these files`,
      ),
    ];
  const read = (name: string) => readJson(path.join(dir, name));
  const [config, generation, tokenizerConfig, tokenizer] = [
    read("config.json"),
    read("generation_config.json"),
    read("tokenizer_config.json"),
    read("tokenizer.json"),
  ];
  const broken = [config, generation, tokenizerConfig, tokenizer].filter((v): v is string => typeof v === "string");
  if (broken.length > 0) return broken.map((m) => diagnostic("VLM4301", m));
  const cfg = config as Json;
  const gen = (generation ?? {}) as Json;
  const text = (cfg["text_config"] ?? {}) as Json;
  const tok = (tokenizerConfig ?? {}) as Json;
  const fromTokens = (key: string) => tokenId(tokenizer as Json | undefined, tokenText(tok[key]));
  const pick = (key: string): number[] | undefined =>
    ids(gen[`${key}_token_id`]) ??
    ids(cfg[`${key}_token_id`]) ??
    ids(text[`${key}_token_id`]) ??
    ids(fromTokens(`${key}_token`));
  const eos = pick("eos");
  if (!eos)
    return [
      diagnostic(
        "VLM4301",
        `no eos token id in ${dir}: generation_config.json, config.json and tokenizer_config.json + tokenizer.json name none`,
      ),
    ];
  const imageToken = ids(cfg["image_token_index"]) ?? ids(cfg["image_token_id"]);
  const preprocessor = read("preprocessor_config.json");
  const processor = read("processor_config.json");
  const imageProcessor =
    typeof preprocessor === "object"
      ? preprocessor
      : typeof processor === "object"
        ? (processor["image_processor"] as Json | undefined)
        : undefined;
  const vision = (cfg["vision_config"] ?? {}) as Json;
  const size = (v: unknown) => (Number.isInteger(v) ? (v as number) : undefined);
  return {
    dir,
    files: CARRIED.filter(has),
    bos: pick("bos")?.[0],
    eos,
    pad: pick("pad")?.[0],
    imageToken: imageToken?.[0],
    generation: gen,
    anyres: {
      pinpoints: cfg["image_grid_pinpoints"],
      processorPinpoints: imageProcessor?.["image_grid_pinpoints"],
      processorFile:
        typeof preprocessor === "object"
          ? "preprocessor_config.json"
          : typeof processor === "object"
            ? "processor_config.json"
            : undefined,
      imageSize: size(vision["image_size"]),
      patchSize: size(vision["patch_size"]),
    },
  };
}
