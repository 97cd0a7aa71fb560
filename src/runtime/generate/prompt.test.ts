// Tokenizer, chat template and image-token expansion against what transformers' processors made
// for the fixtures (test/fixtures/generate/*/reference.json): the same ids for the same prompt.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../diagnostics/diagnostic.js";
import {
  fixtureManifest,
  fixtureReference,
  GENERATE_FIXTURES,
  writeFixturePackage,
} from "../../../test/helpers/generate-package.js";
import { readPackageFolder } from "./package-folder.js";
import { newTokenBudget, promptIds } from "./prompt.js";
import { loadPackageText, renderChat, TextStream } from "./text.js";

const temp = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-prompt-"));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof DiagnosticError) return e.diagnostic.code;
    throw e;
  }
  return undefined;
}

describe.each(["llava", "blip2"] as const)("%s text", (name) => {
  const dir = path.join(GENERATE_FIXTURES, name);
  const reference = fixtureReference(name);
  const text = loadPackageText(dir);
  const manifest = fixtureManifest(name);

  it("tokenizes and decodes as the tokenizers library does", () => {
    for (const probe of reference.tokenizer_probes) {
      expect(text.tokenizer.encode(probe.text).ids).toEqual(probe.ids);
      expect(text.tokenizer.decode(probe.ids, { skip_special_tokens: true })).toBe(probe.decoded);
    }
    for (const c of reference.cases)
      expect(text.tokenizer.decode(c.greedy_ids, { skip_special_tokens: true })).toBe(c.greedy_text);
  });

  it("builds the processor's input_ids for one image: template, image tokens expanded or prepended", () => {
    for (const c of reference.cases) {
      const got = promptIds(manifest, text, c.prompt, 1);
      expect(got.text).toBe(c.text);
      expect(got.ids.map(Number)).toEqual(c.input_ids);
    }
  });

  it("streams text pieces that add up to the decoded text, holding back partial characters", () => {
    for (const c of reference.cases) {
      const stream = new TextStream(text.tokenizer);
      const pieces = c.greedy_ids.map((id) => stream.push(id));
      expect(c.greedy_text.startsWith(pieces.join(""))).toBe(true);
      if (!c.greedy_text.endsWith("\uFFFD")) expect(pieces.join("")).toBe(c.greedy_text);
      else expect(pieces.join("").length).toBeLessThan(c.greedy_text.length);
      expect(stream.text()).toBe(c.greedy_text);
    }
  });
});

describe("prompts: checks", () => {
  const llava = fixtureManifest("llava");
  const llavaText = loadPackageText(path.join(GENERATE_FIXTURES, "llava"));

  it("the LLaVA template holds one <image> per image; --raw takes the tags as written", () => {
    expect(renderChat(llavaText, "Hi", 2)).toBe("USER: <image>\n<image>\nHi ASSISTANT:");
    const two = promptIds(llava, llavaText, "Compare.", 2);
    expect(two.ids.filter((id) => id === 4n)).toHaveLength(50);
    const raw = promptIds(llava, llavaText, "USER: <image>\nWhat is shown in this image? ASSISTANT:", 1, { raw: true });
    expect(raw.ids.map(Number)).toEqual(fixtureReference("llava").cases[0]!.input_ids);
  });

  it("Flamingo keeps one <image> token per interleaved image", () => {
    const flamingo = {
      ...llava,
      family: "flamingo" as const,
      image: { ...llava.image, placement: "cross-attention" as const },
    };
    const got = promptIds(flamingo, llavaText, "<image>A cat.<image>A dog.", 2, { raw: true });
    const plain = llavaText.tokenizer.encode("<image>A cat.<image>A dog.").ids;
    expect(got.ids.map(Number)).toEqual(plain);
    expect(got.ids.filter((id) => id === 4n)).toHaveLength(2);
    expect(codeOf(() => promptIds(flamingo, llavaText, "<image>A cat.<image>A dog.", 1, { raw: true }))).toBe(
      "VLM5007",
    );
  });

  it("more or fewer images than image tags is VLM5007", () => {
    expect(codeOf(() => promptIds(llava, llavaText, "<image> and the image", 1))).toBe("VLM5007");
    expect(codeOf(() => promptIds(llava, llavaText, "USER: <image>\n<image>\nHi", 1, { raw: true }))).toBe("VLM5007");
    expect(codeOf(() => promptIds(llava, llavaText, "USER: Hi", 1, { raw: true }))).toBe("VLM5007");
    const blip = fixtureManifest("blip2");
    const blipText = loadPackageText(path.join(GENERATE_FIXTURES, "blip2"));
    expect(codeOf(() => promptIds(blip, blipText, "a photo", 2))).toBe("VLM5007");
    expect(codeOf(() => promptIds(blip, blipText, "<image> a photo", 1))).toBe("VLM5007");
  });

  it("a prompt that fills the context is VLM5008; otherwise the budget is what fits", () => {
    const whole = { ...llava, maxLength: undefined };
    expect(newTokenBudget(whole, 100, 10)).toBe(10);
    expect(newTokenBudget(whole, 120, 10)).toBe(8);
    expect(codeOf(() => newTokenBudget(whole, 128, 10))).toBe("VLM5008");
  });

  it("a package's cache (maxLength) bounds prompt and new tokens, not the LM's whole context", () => {
    const cached = { ...llava, contextLength: 128, maxLength: 64 };
    expect(newTokenBudget(cached, 60, 10)).toBe(4);
    expect(codeOf(() => newTokenBudget(cached, 64, 10))).toBe("VLM5008");
  });

  it("a package folder missing a file says which; a missing tokenizer is VLM5003", () => {
    const dir = writeFixturePackage(temp, "llava");
    expect(readPackageFolder(dir).manifest.family).toBe("llava");
    fs.rmSync(path.join(dir, "decoder.onnx"));
    expect(() => readPackageFolder(dir)).toThrow(/decoder\.onnx/);
    expect(codeOf(() => readPackageFolder(dir))).toBe("VLM5001");
    fs.writeFileSync(path.join(dir, "decoder.onnx"), "");
    fs.rmSync(path.join(dir, "tokenizer.json"));
    expect(codeOf(() => readPackageFolder(dir))).toBe("VLM5003");
    expect(codeOf(() => readPackageFolder(path.join(temp, "nowhere")))).toBe("VLM5001");
    fs.writeFileSync(path.join(dir, "vlmc-package.json"), JSON.stringify({ version: 99 }));
    expect(codeOf(() => readPackageFolder(dir))).toBe("VLM5002");
  });
});

describe("LLaVA-NeXT text", () => {
  const dir = path.join(GENERATE_FIXTURES, "llava_next");
  const reference = JSON.parse(fs.readFileSync(path.join(dir, "reference.json"), "utf8")) as {
    cases: { prompt: string; text: string; input_ids: number[]; image_sizes: [number, number][] }[];
  };
  const plain = fixtureManifest("llava");
  const manifest = {
    ...plain,
    family: "llava-next" as const,
    image: {
      ...plain.image,
      tokensPerImage: 25,
      anyres: {
        pinpoints: [
          [30, 60],
          [60, 30],
          [60, 60],
          [90, 30],
          [30, 90],
        ] as [number, number][],
        cropSize: 30,
        patchesPerSide: 5,
      },
    },
  };

  it("expands each <image> by its image's size exactly as LlavaNextProcessor (95 and 91 tokens here, both in one prompt too)", () => {
    const text = loadPackageText(dir);
    for (const c of reference.cases) {
      const got = promptIds(manifest, text, c.prompt, c.image_sizes.length, {}, c.image_sizes);
      expect(got.text).toBe(c.text);
      expect(got.ids.map(Number)).toEqual(c.input_ids);
    }
  });
});
