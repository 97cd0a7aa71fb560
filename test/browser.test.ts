// The HTML pages in headless Chromium (one browser for every test here): the full-size LLaVA
// picture renders, a click opens a component, hover shows the spec line and shapes, the screenshot
// has the picture's colours in it, and the summary charts draw.

import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/main.js";
import { drawGraph } from "../src/driver/graph.js";
import { fillOf } from "../src/pictures/dot.js";
import { launchChromium } from "./helpers/chromium.mjs";
import { decodePng, hasColour, inkShare } from "./helpers/png.js";
import { tempFolders } from "./temp-folders.js";

const LLAVA = path.resolve(import.meta.dirname, "..", "examples", "llava.vlm");

let browser: Browser;
let page: Page;
let dir: string;
const tempDir = tempFolders("vlmc-browser-");

beforeAll(async () => {
  dir = tempDir();
  const r = await drawGraph([LLAVA], { model: "llava_1_5_7b", format: "html" });
  fs.writeFileSync(path.join(dir, "llava.html"), r.text!);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
});

afterAll(async () => {
  await browser?.close();
});

const visible = (id: string) => page.locator(`section.view:not([hidden]) [id="${id}"]`);

describe("the graph page in Chromium", () => {
  it("renders the full-size LLaVA picture", async () => {
    await page.goto(pathToFileURL(path.join(dir, "llava.html")).href);
    await visible("components~c:vision").waitFor({ timeout: 10_000 });
    expect(await page.locator("body").getAttribute("data-current")).toBe("components");
    expect(await page.locator("section.view:not([hidden]) g.node").count()).toBeGreaterThanOrEqual(8);
  });

  it("shows the spec line and shapes on hover", async () => {
    await visible("components~c:proj").hover();
    const info = page.locator("#info");
    await expect.poll(() => info.isVisible()).toBe(true);
    const text = await info.textContent();
    const line = fs.readFileSync(LLAVA, "utf8").split("\n").indexOf("  fusion proj = mlp2x_gelu(1024, 4096)") + 1;
    expect(text).toContain(`llava.vlm:${line}: fusion proj = mlp2x_gelu(1024, 4096)`);
    expect(text).toContain("f32[B, 576, 4096] (576 tokens (proved))");
  });

  it("has the picture in its screenshot: not blank, frozen encoders shaded", async () => {
    const shot = decodePng(await page.screenshot({ type: "png" }));
    expect(inkShare(shot)).toBeGreaterThan(0.02);
    expect(hasColour(shot, fillOf("encoder", true))).toBe(true);
    expect(hasColour(shot, fillOf("fusion", false))).toBe(true);
  });

  it("opens a component on a click, and closes it on a click on its frame", async () => {
    await visible("components~c:vision").click();
    expect(await page.locator("body").getAttribute("data-current")).toBe("open-vision");
    await visible("open-vision~b:vision/embeddings").waitFor();
    expect(await visible("open-vision~r:vision/encoder/layers").textContent()).toContain("encoder.layers × 24");
    await page.locator('section.view:not([hidden]) [id="open-vision~c:vision"] > text').first().click();
    expect(await page.locator("body").getAttribute("data-current")).toBe("components");
  });

  it("draws the summary charts", async () => {
    const out = path.join(dir, "summary.html");
    const io = { out: () => {}, err: () => {}, isTty: false, env: {} };
    expect(await runCli(["summary", LLAVA, "--model", "llava_1_5_7b", "--html", "-o", out], io)).toBe(0);
    await page.goto(pathToFileURL(out).href);
    // deployment + two stages; component shares; one FLOP chart per graph
    expect(await page.locator("svg.chart").count()).toBe(4);
    expect(await page.locator("svg.chart").first().locator("rect").count()).toBe(6);
    const shot = decodePng(await page.screenshot({ type: "png" }));
    expect(inkShare(shot)).toBeGreaterThan(0.01);
  });
});
