// `vlmc generate` in-process on package folders made from the transformers fixtures, run with the
// fake StepEngine (the package engine is another branch's): what reaches the engine, streamed
// and JSON output, --batch, and the coded refusals of bad input.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FakeStepEngine } from "../../test/helpers/fake-step-engine.js";
import {
  fixtureManifest,
  fixtureReference,
  GENERATE_FIXTURES,
  writeFixturePackage,
} from "../../test/helpers/generate-package.js";
import { runCli } from "./main.js";
import { runGenerate, type GenerateFlags } from "./generate.js";
import { captureIo } from "../../test/helpers/capture-io.js";

const temp = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-generate-"));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));
const llava = writeFixturePackage(temp, "llava");
const IMAGE = path.join(GENERATE_FIXTURES, "llava", "image.png");

function flags(extra: Partial<GenerateFlags> = {}): GenerateFlags {
  return { image: [IMAGE], maxNewTokens: 5, maxMegapixels: 50, ...extra };
}

describe("vlmc generate", () => {
  it("feeds the engine the processor's ids and pixels, streams the text and prints the stats", async () => {
    const engine = new FakeStepEngine(fixtureManifest("llava"));
    const c = captureIo();
    const prompt = fixtureReference("llava").cases[0]!;
    expect(await runGenerate(llava, flags({ prompt: prompt.prompt }), c.io, async () => engine)).toBe(0);
    const request = engine.prefills[0]!;
    expect(request.rows[0]!.map(Number)).toEqual(prompt.input_ids);
    expect(request.images[0]!.count).toBe(1);
    expect(request.images[0]!.pixels).toHaveLength(3 * 30 * 30);
    expect(engine.steps).toHaveLength(4);
    expect(engine.released).toBe(true);
    expect(c.out.endsWith("\n")).toBe(true);
    expect(c.err).toMatch(/prefill .* ms \(37 tokens\).*tokens\/s.*peak memory \d+ MiB/);
  });

  it("--json gives rows with tokens, text and stop reason, and the stats", async () => {
    const c = captureIo();
    const code = await runGenerate(
      llava,
      flags({ prompt: "Hi", json: true }),
      c.io,
      async () => new FakeStepEngine(fixtureManifest("llava")),
    );
    expect(code).toBe(0);
    const result = JSON.parse(c.out);
    expect(result.rows).toHaveLength(1);
    const tokens: number[] = result.rows[0].tokens;
    const eos = tokens.indexOf(2);
    expect(tokens).toHaveLength(eos >= 0 ? eos + 1 : 5);
    expect(result.rows[0].stop).toBe(eos >= 0 ? "eos" : "max-new-tokens");
    expect(typeof result.rows[0].text).toBe("string");
    expect(result.stats.decodeSteps).toBe(tokens.length - 1);
    expect(result.stats.peakMemoryBytes).toBeGreaterThan(0);
  });

  it("--batch runs rows of different lengths and images together", async () => {
    const batch = path.join(temp, "batch.jsonl");
    fs.copyFileSync(IMAGE, path.join(temp, "photo.png"));
    fs.writeFileSync(
      batch,
      [
        JSON.stringify({ prompt: "What is shown in this image?", images: ["photo.png"] }),
        "",
        JSON.stringify({ prompt: "A longer question about nothing in particular, without an image" }),
      ].join("\n"),
    );
    const engine = new FakeStepEngine(fixtureManifest("llava"));
    const c = captureIo();
    expect(await runGenerate(llava, flags({ image: [], batch }), c.io, async () => engine)).toBe(0);
    const rows = engine.prefills[0]!.rows;
    expect(rows).toHaveLength(2);
    expect(rows[0]!.length).not.toBe(rows[1]!.length);
    expect(engine.prefills[0]!.images.map((i) => i.count)).toEqual([1, 0]);
    expect(c.out).toMatch(/^\[1\] [\s\S]*\n\[2\] [\s\S]*\n$/);
  });

  it("reports an engine that fails while running as VLM5013, and releases it", async () => {
    const engine = new FakeStepEngine(fixtureManifest("llava"));
    engine.step = () => Promise.reject(new Error("session run failed"));
    const c = captureIo();
    expect(await runGenerate(llava, flags({ prompt: "Hi" }), c.io, async () => engine)).toBe(1);
    expect(c.err).toMatch(/VLM5013.*session run failed/);
    expect(engine.released).toBe(true);
  });

  it("refuses bad input with coded diagnostics before opening an engine", async () => {
    const cases: [string[], string][] = [
      [["--prompt", "<image> Hi"], "VLM5007"],
      [["--image", IMAGE, "--image", IMAGE, "--prompt", "<image> Hi"], "VLM5007"],
      [["--image", path.join(temp, "absent.png"), "--prompt", "Hi"], "VLM5005"],
      [["--image", IMAGE, "--prompt", "Hi", "--top-p", "2"], "VLM5009"],
      [["--image", IMAGE, "--prompt", "Hi", "--max-megapixels", "0.001"], "VLM5006"],
      [["--image", IMAGE, "--prompt", "word ".repeat(200)], "VLM5008"],
    ];
    for (const [args, code] of cases) {
      const c = captureIo();
      let opened = false;
      const open = async () => {
        opened = true;
        return new FakeStepEngine(fixtureManifest("llava"));
      };
      const parsed = { ...flags({ image: [] }), ...parseArgs(args) };
      expect([code, await runGenerate(llava, parsed, c.io, open)]).toEqual([code, 1]);
      expect(c.err).toContain(code);
      expect(opened).toBe(false);
    }
  });

  it("names the missing file of a package folder, and rejects a bad batch file", async () => {
    const broken = writeFixturePackage(path.join(temp, "broken"), "llava");
    fs.rmSync(path.join(broken, "processor_config.json"));
    const c = captureIo();
    expect(await runCli(["generate", broken, "--image", IMAGE, "--prompt", "Hi"], c.io)).toBe(1);
    expect(c.err).toMatch(/VLM5001.*processor_config\.json/);
    const batch = path.join(temp, "bad.jsonl");
    fs.writeFileSync(batch, '{"images": []}\n');
    const d = captureIo();
    expect(await runCli(["generate", llava, "--batch", batch], d.io)).toBe(1);
    expect(d.err).toContain("VLM5011");
    expect(await runCli(["generate", llava], captureIo().io)).toBe(2);
  });
});

/** The few flags the refusal cases use, parsed as commander would. */
function parseArgs(args: string[]): Partial<GenerateFlags> {
  const out: Partial<GenerateFlags> & { image: string[] } = { image: [] };
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i]!, args[i + 1]!];
    if (flag === "--image") out.image.push(value);
    else if (flag === "--prompt") out.prompt = value;
    else if (flag === "--top-p") out.topP = Number(value);
    else if (flag === "--max-megapixels") out.maxMegapixels = Number(value);
  }
  return out;
}
