// `compilePackage`: a model's `package { … }` → a generation package folder: vision.onnx (the spec's
// vision graph), embedding.onnx and decoder.onnx (built with the cache plumbing of the decoder's
// std block, src/codegen/package/), genai_config.json, vlmc-package.json and the checkpoint's
// tokenizer and processor files. Everything is written into a temporary folder beside the target
// and renamed into place at the end, so a failure never leaves a partial package.

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { elaborate, type CheckResult } from "./check.js";
import { locator, sourceHash, type CompileOptions } from "./compile.js";
import { planPackage, type PackageLayout } from "./package-plan.js";
import { DiagnosticError, diagnostic, InternalError, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Graph, IrModule } from "../ir/graph.js";
import { dimMul, type Dim } from "../ir/dims.js";
import { tensorType } from "../ir/types.js";
import { createPassManager } from "../passes/index.js";
import { weightSources, loadWeights, parseWeightSpec, type LoadedWeights } from "../codegen/weights.js";
import { parameterBytes } from "../codegen/init.js";
import { lowerWithPrecomputed } from "../codegen/precompute.js";
import { targetLowerings } from "../codegen/targets.js";
import { targetNamed } from "../target/target.js";
import { KV_ATTENTION_LOWERINGS } from "../codegen/lower-cache.js";
import { anyResFeatures, decoderGraph, embeddingGraph, NAMES } from "../codegen/package/graphs.js";
import { readCheckpointFiles, type CheckpointFiles } from "../codegen/package/checkpoint-files.js";
import { genaiConfig } from "../codegen/package/genai-config.js";
import { writeOnnxModel, type OnnxModel } from "../onnx/onnx-writer.js";
import { layerName, MANIFEST_FILE, MANIFEST_VERSION, type CacheSpec, type PackageManifest } from "../onnx/manifest.js";

export interface PackageOptions extends Omit<CompileOptions, "out" | "graph" | "emit"> {
  /** The package folder to create. */
  readonly out: string;
  /** The checkpoint folder with the tokenizer and config files (default: a folder given as --weights). */
  readonly checkpoint?: string;
  /** Replace an existing folder at `out` (atomically: the old one is removed only once the new one is in place). */
  readonly replace?: boolean;
}

export interface PackageResult extends CheckResult {
  /** The package folder, once written. */
  readonly dir: string | undefined;
  readonly manifest: PackageManifest | undefined;
}

const FILES = { vision: "vision.onnx", embedding: "embedding.onnx", decoder: "decoder.onnx" } as const;

/** The checkpoint folder: --checkpoint, else the one --weights spec that names a folder. */
function checkpointDir(options: PackageOptions): string | undefined {
  if (options.checkpoint !== undefined) return options.checkpoint;
  const specs = typeof options.weights === "string" ? [options.weights] : (options.weights ?? []);
  const folders = specs.map(parseWeightSpec).filter((s) => s.component === undefined && isFolder(s.path));
  return folders.length === 1 ? folders[0]!.path : undefined;
}

function isFolder(p: string): boolean {
  return fs.existsSync(p) && fs.statSync(p).isDirectory();
}

function manifestOf(
  module: IrModule,
  layout: PackageLayout,
  target: NonNullable<PackageOptions["target"]>,
  files: CheckpointFiles,
  decoder: Graph,
): PackageManifest {
  const d = layout.decoder;
  return {
    version: MANIFEST_VERSION,
    family: layout.family,
    model: module.name,
    target,
    graphs: {
      vision: {
        file: FILES.vision,
        inputs: { pixel_values: NAMES.pixelValues, ...(layout.anyres ? { image_index: NAMES.imageIndex } : {}) },
        outputs: { image_features: NAMES.imageFeatures },
      },
      embedding: {
        file: FILES.embedding,
        inputs: { input_ids: NAMES.inputIds, ...(d.cross ? {} : { image_features: NAMES.imageFeatures }) },
        outputs: { inputs_embeds: NAMES.inputsEmbeds },
      },
      decoder: {
        file: FILES.decoder,
        inputs: {
          inputs_embeds: NAMES.inputsEmbeds,
          attention_mask: NAMES.attentionMask,
          ...(d.positionIds ? { position_ids: NAMES.positionIds } : {}),
          ...(d.cross ? { cross_attention_states: NAMES.crossStates, media_index: NAMES.mediaIndex } : {}),
        },
        outputs: { logits: NAMES.logits },
      },
    },
    vocabSize: d.vocab,
    contextLength: d.context,
    maxLength: layout.promptTokens + (layout.placement === "prefix" ? layout.tokensPerImage : 0) + layout.newTokens,
    hiddenSize: d.hidden,
    cache: {
      pastKey: NAMES.pastKey,
      pastValue: NAMES.pastValue,
      presentKey: NAMES.presentKey,
      presentValue: NAMES.presentValue,
      layers: d.layers,
      heads: d.kvHeads,
      headDim: d.headDim,
      dtype: cacheDtype(decoder, NAMES.pastKey),
      lengthAxis: 2,
    },
    ...(d.cross
      ? {
          crossCache: {
            pastKey: NAMES.pastCrossKey,
            pastValue: NAMES.pastCrossValue,
            presentKey: NAMES.presentCrossKey,
            presentValue: NAMES.presentCrossValue,
            layers: d.cross.layers.length,
            heads: d.cross.heads,
            headDim: d.cross.headDim,
            dtype: cacheDtype(decoder, NAMES.pastCrossKey),
            lengthAxis: 2 as const,
          },
        }
      : {}),
    positionIds: d.positionIds,
    sharedBuffer: d.kernel === "gqa",
    image: {
      tokenId: layout.imageToken,
      tokensPerImage: layout.tokensPerImage,
      placement: layout.placement,
      pixelShape: layout.pixelShape,
      ...(d.cross ? { featureWidth: d.cross.mediaWidth } : {}),
      ...(layout.anyres
        ? {
            anyres: {
              pinpoints: layout.anyres.pinpoints,
              cropSize: layout.anyres.cropSize,
              patchesPerSide: layout.anyres.patchesPerSide,
            },
          }
        : {}),
    },
    tokens: {
      ...(files.bos !== undefined ? { bos: files.bos } : {}),
      eos: files.eos,
      ...(files.pad !== undefined ? { pad: files.pad } : {}),
    },
    files: files.files,
  };
}

export async function compilePackage(paths: readonly string[], options: PackageOptions): Promise<PackageResult> {
  const elaborated = elaborate(paths, options);
  const diagnostics: Diagnostic[] = [...elaborated.diagnostics];
  const finish = (dir?: string, manifest?: PackageManifest): PackageResult => ({
    diagnostics,
    program: elaborated.program,
    sources: elaborated.sources,
    ok: !diagnostics.some((d) => d.severity === "error"),
    dir,
    manifest,
  });
  const failed = () => diagnostics.some((d) => d.severity === "error");
  if (!elaborated.ok) return finish();

  const candidates = elaborated.models.filter(
    (m) => m.module && (options.model === undefined ? m.module.package : m.module.name === options.model),
  );
  if (candidates.length !== 1) {
    const which = options.model ?? "with a package { … } declaration";
    diagnostics.push(
      diagnostic(
        "VLM3203",
        candidates.length === 0
          ? `no model ${which} in ${paths.join(", ")}`
          : `several models declare a package (${candidates.map((m) => m.module!.name).join(", ")}); choose one with --model`,
      ),
    );
    return finish();
  }
  const { module, file, decl } = candidates[0]! as (typeof candidates)[0] & { module: IrModule };
  const target = options.target ?? "portable";
  const runsOn = targetNamed(target);
  const layout = planPackage(module, runsOn, options.precision);
  if (Array.isArray(layout)) {
    diagnostics.push(...layout);
    return finish();
  }
  if (fs.existsSync(options.out) && !options.replace)
    diagnostics.push(
      diagnostic("VLM4300", `${options.out} exists; choose another folder or pass --replace to replace it`),
    );
  const dir = checkpointDir(options);
  const files: CheckpointFiles | Diagnostic[] =
    dir === undefined
      ? [
          diagnostic(
            "VLM4301",
            "a package carries the checkpoint's tokenizer and token ids: name the checkpoint folder with --checkpoint DIR (config.json, tokenizer_config.json, tokenizer.json)",
          ),
        ]
      : readCheckpointFiles(dir);
  if (Array.isArray(files)) diagnostics.push(...files);
  else if (files.imageToken !== undefined && files.imageToken !== layout.imageToken)
    diagnostics.push(
      diagnostic(
        "VLM3200",
        `image_token is ${layout.imageToken}, but ${path.join(files.dir, "config.json")} says ${files.imageToken}`,
        layout.spans.get("image_token"),
      ),
    );
  if (!Array.isArray(files) && layout.anyres) diagnostics.push(...anyResCheckpointProblems(layout, files));
  if (failed() || Array.isArray(files)) return finish();

  if (layout.anyres) anyResFeatures(module, layout.vision, layout.anyres.newline, layout.span);
  else flattenFeatures(layout);
  contractNames(layout.vision);
  const graphs: Graph[] = [
    layout.vision,
    embeddingGraph(module, layout.decoder, layout.imageToken, layout.span),
    decoderGraph(module, layout.decoder, layout.span),
  ];
  const packaged: IrModule = { ...module, graphs };
  createPassManager().run(packaged, {
    // Parameters of other graphs (the forward's) are unused here by design.
    passes: [...(options.passes ?? []), "-unused-values"],
    verify: options.verifyIr ?? false,
    modelSpan: decl.nameSpan,
    target,
    ...(options.quantize ? { quantize: options.quantize } : {}),
    ...(options.precision ? { precision: options.precision } : {}),
    ...(options.int4Block !== undefined ? { int4Block: options.int4Block } : {}),
    accept: (d) => diagnostics.push(d),
  });
  if (failed()) return finish();

  const specs = (typeof options.weights === "string" ? [options.weights] : (options.weights ?? [])).map(
    parseWeightSpec,
  );
  // A checkpoint folder given as --weights is also where the tokenizer files come from (above); its
  // weights load as any --weights source does.
  const weights: LoadedWeights | undefined = loadWeights(packaged, weightSources(module, file, specs), (d) =>
    diagnostics.push(d),
  );
  if (!weights) return finish();
  const manifest = manifestOf(module, layout, target, files, graphs[2]!);
  const tmp = path.join(
    path.dirname(path.resolve(options.out)),
    `.${path.basename(options.out)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`,
  );
  try {
    const lowerOptions = {
      ...parameterBytes(weights, options.seed ?? 0),
      location: locator(elaborated.program),
      metadata: { "vlmc.source_sha256": sourceHash(elaborated.program) },
      target: runsOn,
      targetLowerings: { ...targetLowerings(runsOn), ...KV_ATTENTION_LOWERINGS },
    };
    fs.mkdirSync(tmp, { recursive: true });
    const names = [FILES.vision, FILES.embedding, FILES.decoder];
    for (const [i, graph] of graphs.entries()) {
      let onnx: OnnxModel;
      try {
        onnx = await lowerWithPrecomputed(packaged, graph, lowerOptions);
      } catch (e) {
        if (!(e instanceof DiagnosticError)) throw e;
        diagnostics.push(e.diagnostic);
        return finish();
      }
      const target = path.join(tmp, names[i]!);
      await writeOnnxModel(target, onnx, {
        externalData: options.externalData ?? "auto",
        onProgress:
          options.onProgress &&
          ((writtenBytes, totalBytes) =>
            options.onProgress!({ path: path.join(options.out, names[i]!), writtenBytes, totalBytes })),
      });
    }
    fs.writeFileSync(path.join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.writeFileSync(
      path.join(tmp, "genai_config.json"),
      `${JSON.stringify(genaiConfig(manifest, files.generation), null, 2)}\n`,
    );
    for (const name of files.files) fs.copyFileSync(path.join(files.dir, name), path.join(tmp, name));
    moveIntoPlace(tmp, options.out);
    return finish(options.out, manifest);
  } catch (e) {
    diagnostics.push(
      diagnostic("VLM4302", `cannot write package ${options.out}: ${e instanceof Error ? e.message : String(e)}`),
    );
    return finish();
  } finally {
    weights.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const CACHE_DTYPES: Readonly<Record<string, CacheSpec["dtype"]>> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

/** The dtype of layer 0's cache input `pattern` as the passes left it (fp16 when the decoder runs in fp16). */
function cacheDtype(decoder: Graph, pattern: string): CacheSpec["dtype"] {
  const name = layerName(pattern, 0);
  const input = decoder.inputs.find((v) => v.source.kind === "input" && v.source.name === name);
  const dtype = input && CACHE_DTYPES[input.type.dtype];
  if (!dtype) throw new InternalError(`decoder input ${name} is missing or not a float tensor`);
  return dtype;
}

/**
 * The vision graph's pixels input and features output under the generation contract's names
 * (pixel_values → image_features), whatever the spec called them, so a runtime that knows only
 * the contract (ONNX Runtime GenAI's defaults) feeds it without reading vlmc's manifest.
 */
function contractNames(vision: Graph): void {
  const pixels = vision.inputs.find((v) => v.source.kind === "input" && v.source.name !== NAMES.imageIndex);
  if (!pixels) throw new InternalError("the package's vision graph has no pixels input");
  pixels.source = { kind: "input", name: NAMES.pixelValues };
  vision.outputs[0] = { name: NAMES.imageFeatures, value: vision.outputs[0]!.value };
}

/**
 * The vision graph's [B, tokens, width] output as [B·tokens, width]: image features are rows, as
 * ONNX Runtime GenAI's vision graphs return them and the embedding graph takes them.
 */
function flattenFeatures(layout: PackageLayout): void {
  const out = layout.vision.outputs[0]!;
  const [batch, tokens, width] = out.value.type.shape as [Dim, number, number];
  const rows = tensorType(out.value.type.dtype, [dimMul(batch, tokens), width]);
  out.value = layout.vision.addNode("Reshape", [out.value], [rows], { shape: [-1, width] }, "", layout.span)
    .outputs[0]!;
}

/**
 * The spec's AnyRes facts against the checkpoint's: the pinpoints of config.json (the model packs
 * by them) and of the image processor (it crops by them), and the vision tower's crop and patch
 * size. A mismatch would make the prompt's image tokens and the features disagree.
 */
function anyResCheckpointProblems(layout: PackageLayout, files: CheckpointFiles): Diagnostic[] {
  const anyres = layout.anyres!;
  const problems: Diagnostic[] = [];
  const differ = (key: string, message: string) =>
    problems.push(diagnostic("VLM3206", message, layout.spans.get(key) ?? layout.span));
  const same = JSON.stringify(anyres.pinpoints);
  for (const [file, pinpoints] of [
    ["config.json", files.anyres.pinpoints],
    [files.anyres.processorFile ?? "the image processor config", files.anyres.processorPinpoints],
  ] as const)
    if (JSON.stringify(pinpoints) !== same)
      differ(
        "pinpoints",
        `pinpoints are ${same}, but ${file} in ${files.dir} says image_grid_pinpoints ${JSON.stringify(pinpoints ?? null)}`,
      );
  const { imageSize, patchSize } = files.anyres;
  if (imageSize !== undefined && imageSize !== anyres.cropSize)
    differ(
      "vision",
      `the vision graph takes ${anyres.cropSize} px crops, but config.json's vision_config.image_size is ${imageSize}`,
    );
  if (imageSize !== undefined && patchSize !== undefined && imageSize / patchSize !== anyres.patchesPerSide)
    differ(
      "vision",
      `the vision graph gives ${anyres.patchesPerSide}² features per crop, but config.json's vision tower gives ${imageSize / patchSize}² (image_size ${imageSize}, patch_size ${patchSize})`,
    );
  return problems;
}

/** Renames the finished folder to `out`; an existing `out` is moved aside first and removed after. */
function moveIntoPlace(tmp: string, out: string): void {
  if (!fs.existsSync(out)) {
    fs.renameSync(tmp, out);
    return;
  }
  const old = `${tmp}.old`;
  fs.renameSync(out, old);
  try {
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.renameSync(old, out);
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
}
