// Package folders for generation tests, made from the transformers fixtures of
// test/fixtures/generate/: the checkpoint's tokenizer and processor files and a manifest as the
// package writer would write it. The graph files are empty placeholders: these folders are run
// with the fake StepEngine, which reads no graph.

import * as fs from "node:fs";
import * as path from "node:path";
import { MANIFEST_FILE, type PackageManifest } from "../../src/onnx/manifest.js";
import { fakeManifest } from "./fake-step-engine.js";

export const GENERATE_FIXTURES = path.join(import.meta.dirname, "../fixtures/generate");

export interface FixtureReference {
  readonly image_token_id: number;
  readonly cases: readonly {
    readonly prompt: string;
    readonly text: string;
    readonly input_ids: readonly number[];
    readonly greedy_ids: readonly number[];
    readonly greedy_text: string;
  }[];
  readonly tokenizer_probes: readonly {
    readonly text: string;
    readonly ids: readonly number[];
    readonly decoded: string;
  }[];
}

export function fixtureReference(name: "llava" | "blip2"): FixtureReference {
  return JSON.parse(fs.readFileSync(path.join(GENERATE_FIXTURES, name, "reference.json"), "utf8"));
}

/** The manifest the package writer gives each fixture (facts from its config.json). */
export function fixtureManifest(name: "llava" | "blip2"): PackageManifest {
  const config = JSON.parse(fs.readFileSync(path.join(GENERATE_FIXTURES, name, "config.json"), "utf8"));
  const text = config.text_config;
  const llava = name === "llava";
  const files = [
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    ...(llava ? ["chat_template.jinja"] : []),
  ];
  return fakeManifest({
    family: llava ? "llava" : "blip2",
    model: `tiny-${name}`,
    graphs: {
      vision: { file: "vision.onnx", inputs: {}, outputs: {} },
      embedding: { file: "embedding.onnx", inputs: {}, outputs: {} },
      decoder: { file: "decoder.onnx", inputs: {}, outputs: {} },
    },
    vocabSize: text.vocab_size,
    contextLength: text.max_position_embeddings,
    hiddenSize: text.hidden_size,
    image: {
      tokenId: config.image_token_index,
      tokensPerImage: llava ? config.image_seq_length : config.num_query_tokens,
      placement: llava ? "image-tokens" : "prefix",
      pixelShape: [3, config.vision_config.image_size, config.vision_config.image_size],
    },
    tokens: { bos: text.bos_token_id, eos: [text.eos_token_id], pad: text.pad_token_id },
    files,
  });
}

/** Writes a package folder for fixture `name` under `root`; returns its path. */
export function writeFixturePackage(root: string, name: "llava" | "blip2", manifest = fixtureManifest(name)): string {
  const dir = path.join(root, `${name}-package`);
  fs.mkdirSync(dir, { recursive: true });
  for (const file of manifest.files) fs.copyFileSync(path.join(GENERATE_FIXTURES, name, file), path.join(dir, file));
  for (const graph of Object.values(manifest.graphs)) fs.writeFileSync(path.join(dir, graph.file), "");
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  return dir;
}
