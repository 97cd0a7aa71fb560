// `vlmc generate PACKAGE --image FILE… --prompt TEXT`: text from a package folder, streamed as it
// is produced; prefill time, decode speed and peak memory at the end; --json for machines;
// --batch FILE for several prompts at once. The generation code loads sharp and the tokenizer,
// so it is imported when the command runs, not when the CLI starts.

import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";
import { diagnostic, DiagnosticError, type Diagnostic } from "../diagnostics/diagnostic.js";
import type {
  EngineFactory,
  GenerateRequest,
  GenerationStats,
  TextGenerationOptions,
  TextGenerationResult,
} from "../runtime/generate/index.js";
import { collect, EXIT, parseInteger, printDiagnostics, type CliIo } from "./common.js";
import { openPackage, PackageError } from "../runtime/generate/package-engine.js";

export interface GenerateFlags {
  image: string[];
  prompt?: string;
  batch?: string;
  raw?: boolean;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  repetitionPenalty?: number;
  maxMegapixels: number;
  json?: boolean;
  provider?: Provider;
}

/** onnxruntime-node's execution providers a package can run on here. */
const PROVIDERS = ["cpu", "cuda"] as const;
type Provider = (typeof PROVIDERS)[number];

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

export function generateCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
  openEngine?: EngineFactory,
): void {
  program
    .command("generate")
    .description("generate text from a package: images and a prompt in, text out")
    .argument("<package>", "package folder (holds vlmc-package.json)")
    .option("--image <file>", "an image, in the order of the prompt's image tags (repeatable)", collect, [])
    .option("--prompt <text>", "the prompt; the package's chat template is applied unless --raw")
    .option("--batch <file>", 'JSON Lines: one {"prompt": TEXT, "images": [FILE…]} per line, generated together')
    .option("--raw", "use the prompt as written: no chat template (write image tags yourself)")
    .option("--max-new-tokens <n>", "new tokens per prompt at most", parseInteger, 128)
    .option("--temperature <t>", "sample at this temperature (default 0: greedy search)", parseNumber)
    .option("--top-k <k>", "sample among the k most likely tokens", parseInteger)
    .option("--top-p <p>", "sample among the most likely tokens holding probability p", parseNumber)
    .option("--seed <n>", "seed of sampling (default 0)", parseInteger)
    .option("--repetition-penalty <r>", "Hugging Face's repetition penalty (1: none)", parseNumber)
    .option("--max-megapixels <n>", "refuse images whose header claims more pixels", parseNumber, 50)
    .option("--json", "print one JSON object at the end instead of streaming text")
    .addOption(
      new Option("--provider <name>", "ONNX Runtime execution provider (cuda: an ort-cuda package on an NVIDIA GPU)")
        .choices(PROVIDERS)
        .default("cpu"),
    )
    .action(async (dir: string, flags: GenerateFlags) => {
      setExit(await runGenerate(dir, flags, io, openEngine));
    });
}

/** Runs `vlmc generate`; returns the exit code. `openEngine` absent: the build's package engine. */
export async function runGenerate(
  dir: string,
  flags: GenerateFlags,
  io: CliIo,
  openEngine?: EngineFactory,
): Promise<number> {
  const fail = (d: Diagnostic) => {
    printDiagnostics(io, [d], () => undefined, "pretty");
    return EXIT.userError;
  };
  if ((flags.prompt === undefined) === (flags.batch === undefined)) {
    io.err("error: pass either --prompt TEXT (with its --image files) or --batch FILE\n");
    return EXIT.usage;
  }
  if (flags.batch !== undefined && flags.image.length > 0) {
    io.err("error: with --batch, each line names its own images; drop --image\n");
    return EXIT.usage;
  }
  const api = await import("../runtime/generate/index.js");
  const factory: EngineFactory = openEngine ?? ((dir) => openOn(dir, flags.provider ?? "cpu"));
  try {
    const requests =
      flags.batch !== undefined ? readBatch(flags.batch) : [{ prompt: flags.prompt!, images: flags.image }];
    const options: TextGenerationOptions = {
      maxNewTokens: flags.maxNewTokens,
      maxMegapixels: flags.maxMegapixels,
      ...(flags.raw ? { raw: true } : {}),
      ...(flags.temperature !== undefined ? { temperature: flags.temperature } : {}),
      ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
      ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      ...(flags.repetitionPenalty !== undefined ? { repetitionPenalty: flags.repetitionPenalty } : {}),
    };
    // One prompt streams its text as produced; a batch prints each row when all are done.
    const stream = !flags.json && requests.length === 1;
    let streamed = "";
    const run = api.generateText(dir, requests, options, factory);
    let result: TextGenerationResult;
    for (;;) {
      const next = await run.next();
      if (next.done) {
        result = next.value;
        break;
      }
      if (stream && next.value.text !== "") {
        io.out(next.value.text);
        streamed += next.value.text;
      }
    }
    if (flags.json) io.out(JSON.stringify(jsonResult(requests, result), null, 2) + "\n");
    else if (stream) {
      const text = result.rows[0]!.text;
      io.out((text.startsWith(streamed) ? text.slice(streamed.length) : "") + "\n");
    } else io.out(result.rows.map((r, i) => `[${i + 1}] ${r.text}`).join("\n") + "\n");
    if (!flags.json) io.err(statsLine(result.stats) + "\n");
    return EXIT.ok;
  } catch (e) {
    if (e instanceof DiagnosticError) return fail(e.diagnostic);
    throw e;
  }
}

/** The package engine on `provider`; a provider onnxruntime-node cannot load is a VLM5020 saying what it needs. */
async function openOn(dir: string, provider: Provider) {
  if (provider === "cpu") return openPackage(dir);
  try {
    return await openPackage(dir, { session: { executionProviders: [provider] } });
  } catch (e) {
    if (e instanceof PackageError) throw e;
    throw new DiagnosticError(
      diagnostic(
        "VLM5020",
        `onnxruntime-node cannot open ${dir} on the ${provider} provider: ${e instanceof Error ? e.message : String(e)}`,
        undefined,
        {
          hint: "the CUDA provider needs libonnxruntime_providers_cuda.so beside onnxruntime-node's library (its install script fetches it: npm ci without ONNXRUNTIME_NODE_INSTALL=skip) and CUDA 12 with cuDNN 9; see docs/gpu.md",
        },
      ),
    );
  }
}

/** JSON Lines of {prompt, images}; image paths are relative to the batch file's folder. */
function readBatch(file: string): GenerateRequest[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DiagnosticError(
      diagnostic("VLM5011", `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  const base = path.dirname(file);
  const requests: GenerateRequest[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw batchError(where, `not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const { prompt, images = [] } = (value ?? {}) as { prompt?: unknown; images?: unknown };
    if (typeof prompt !== "string") throw batchError(where, 'has no "prompt" string');
    if (!Array.isArray(images) || !images.every((f) => typeof f === "string"))
      throw batchError(where, '"images" is not a list of file names');
    requests.push({ prompt, images: images.map((f: string) => path.resolve(base, f)) });
  }
  if (requests.length === 0) throw batchError(file, "holds no prompts");
  return requests;
}

function batchError(where: string, why: string): DiagnosticError {
  return new DiagnosticError(
    diagnostic("VLM5011", `${where}: ${why}`, undefined, {
      hint: 'write one JSON object per line: {"prompt": "…", "images": ["photo.png"]}',
    }),
  );
}

function jsonResult(requests: readonly GenerateRequest[], result: TextGenerationResult) {
  return {
    rows: result.rows.map((r, i) => ({ prompt: requests[i]!.prompt, images: requests[i]!.images, ...r })),
    stats: result.stats,
  };
}

function statsLine(s: GenerationStats): string {
  const mb = (s.peakMemoryBytes / 2 ** 20).toFixed(0);
  return (
    `prefill ${s.prefillMs.toFixed(1)} ms (${s.promptTokens} tokens), first token ${s.timeToFirstTokenMs.toFixed(1)} ms, ` +
    `${s.newTokens} new tokens, decode ${s.tokensPerSecond.toFixed(1)} tokens/s, peak memory ${mb} MiB`
  );
}
