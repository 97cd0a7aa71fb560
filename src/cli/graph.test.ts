// `vlmc graph` and `vlmc summary --html` on the command line: files written whole, the format taken
// from -o's extension, coded errors and exit code 1 on bad input with nothing written.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./main.js";
import { tempFolders } from "../../test/temp-folders.js";
import { captureIo } from "../../test/helpers/capture-io.js";

const TINY = path.resolve(import.meta.dirname, "..", "..", "test", "golden", "tiny-blocks.vlm");

describe("vlmc graph", () => {
  const dir = tempFolders("vlmc-graph-")();

  it("writes SVG, HTML or DOT as -o's extension says", async () => {
    for (const [ext, start] of [
      ["svg", "<?xml"],
      ["html", "<!DOCTYPE html>"],
      ["dot", "digraph"],
    ] as const) {
      const out = path.join(dir, `tiny.${ext}`);
      const { io: cli } = captureIo();
      expect(await runCli(["graph", TINY, "--model", "tiny_vit", "--level", "blocks", "-o", out], cli)).toBe(0);
      expect(fs.readFileSync(out, "utf8").startsWith(start)).toBe(true);
    }
  });

  it("prints to standard output without -o, and --format wins over the extension", async () => {
    const c = captureIo();
    const cli = c.io;
    expect(await runCli(["graph", TINY, "--model", "tiny_projector", "--format", "dot"], cli)).toBe(0);
    expect(c.out).toContain('"c:proj"');
  });

  it("reports VLM4400 and exits 1 when the file has several models and no --model, writing nothing", async () => {
    const out = path.join(dir, "none.svg");
    const c = captureIo();
    const cli = c.io;
    expect(await runCli(["graph", TINY, "-o", out], cli)).toBe(1);
    expect(c.err).toContain("VLM4400");
    expect(fs.existsSync(out)).toBe(false);
  });

  it("rejects an unknown level as a usage error", async () => {
    expect(await runCli(["graph", TINY, "--level", "atoms"], captureIo().io)).toBe(2);
  });
});

describe("vlmc summary --html", () => {
  it("prints a page of charts: parameters per stage and shares per component", async () => {
    const c = captureIo();
    const cli = c.io;
    expect(await runCli(["summary", TINY, "--model", "tiny_vit", "--html"], cli)).toBe(0);
    expect(c.out.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(c.out).toContain('<section class="summary" data-model="tiny_vit">');
    expect(c.out).toContain("FLOP share per component: graph forward");
  });
});
