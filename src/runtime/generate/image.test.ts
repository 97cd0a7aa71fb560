// Pixel parity with transformers' image processors (PIL backend) on the committed test image, and
// the refusals: an image too large by its header, a truncated file, a file that is no image.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../diagnostics/diagnostic.js";
import { readNpy } from "../npy.js";
import { preprocessImage, readImageProcessing, type ImageProcessing } from "./image.js";

const FIXTURES = path.join(import.meta.dirname, "../../../test/fixtures/generate");
const temp = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-image-"));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (e) {
    if (e instanceof DiagnosticError) return e.diagnostic.code;
    throw e;
  }
}

/**
 * PIL's BICUBIC and libvips's cubic kernel are both Catmull-Rom but differ at hard edges: on the
 * test image the resized pixels differ by 0.3 levels of 255 on average and by at most 16 levels
 * (at the white line and the shapes' borders).
 */
async function expectPixelParity(processing: ImageProcessing, image: string, reference: string): Promise<void> {
  const ref = readNpy(reference);
  const got = await preprocessImage(image, processing);
  expect([1, 3, got.height, got.width]).toEqual(ref.shape);
  const want = ref.data as Float32Array;
  const plane = got.height * got.width;
  const levels = Array.from(
    want,
    (w, i) => Math.abs(got.pixels[i]! - w) * processing.std[Math.floor(i / plane)]! * 255,
  );
  const sorted = [...levels].sort((a, b) => a - b);
  expect(sorted.at(-1)!).toBeLessThanOrEqual(16.01);
  expect(sorted[Math.floor(sorted.length * 0.95)]!).toBeLessThanOrEqual(2.01);
  expect(levels.reduce((a, b) => a + b, 0) / levels.length).toBeLessThan(0.5);
}

describe("image preprocessing", () => {
  for (const name of ["llava", "blip2"]) {
    it(`${name}: pixel_values equal the transformers processor's within the resize tolerance`, async () => {
      const dir = path.join(FIXTURES, name);
      await expectPixelParity(
        readImageProcessing(dir),
        path.join(dir, "image.png"),
        path.join(dir, "pixel_values.npy"),
      );
    });
  }

  it("LLaVA's do_pad (pad to a square of the mean colour first) equals LlavaImageProcessor's", async () => {
    const dir = path.join(FIXTURES, "llava");
    const processing = { ...readImageProcessing(dir), padToSquare: true };
    await expectPixelParity(processing, path.join(dir, "image.png"), path.join(dir, "pixel_values_pad.npy"));
  });

  it("reads CLIP's shortest-edge resize with center crop, and BLIP's fixed size", () => {
    const clip = readImageProcessing(path.join(FIXTURES, "llava"));
    expect(clip.resize).toEqual({ mode: "shortest-edge", size: 30 });
    expect(clip.crop).toEqual({ height: 30, width: 30 });
    expect(clip.kernel).toBe("cubic");
    const blip = readImageProcessing(path.join(FIXTURES, "blip2"));
    expect(blip.resize).toEqual({ mode: "fixed", height: 30, width: 30 });
    expect(blip.crop).toBeUndefined();
  });

  it("refuses by its header an image larger than the megapixel limit, before decoding", async () => {
    const big = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: "#808080" } })
      .png()
      .toBuffer();
    // Only the header survives: decoding would fail, so VLM5006 proves nothing was decoded.
    const file = path.join(temp, "big-header.png");
    fs.writeFileSync(file, big.subarray(0, 64));
    const processing = readImageProcessing(path.join(FIXTURES, "llava"));
    expect(await codeOf(preprocessImage(file, processing, { maxMegapixels: 5 }))).toBe("VLM5006");
    expect(await codeOf(preprocessImage(file, processing, { maxMegapixels: 10 }))).toBe("VLM5005");
  });

  it("reports a truncated image, a file that is not an image and a missing file as VLM5005", async () => {
    const processing = readImageProcessing(path.join(FIXTURES, "llava"));
    const png = fs.readFileSync(path.join(FIXTURES, "llava", "image.png"));
    const truncated = path.join(temp, "truncated.png");
    fs.writeFileSync(truncated, png.subarray(0, Math.floor(png.length / 2)));
    const text = path.join(temp, "notes.png");
    fs.writeFileSync(text, "not an image\n");
    expect(await codeOf(preprocessImage(truncated, processing))).toBe("VLM5005");
    expect(await codeOf(preprocessImage(text, processing))).toBe("VLM5005");
    expect(await codeOf(preprocessImage(path.join(temp, "absent.png"), processing))).toBe("VLM5005");
  });

  it("refuses AnyRes pinpoints that are not [height, width] pairs with VLM5012", () => {
    const dir = path.join(temp, "anyres");
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, "preprocessor_config.json"),
      JSON.stringify({ size: { shortest_edge: 336 }, image_grid_pinpoints: [[336, 672, 3]] }),
    );
    expect(() => readImageProcessing(dir)).toThrow(DiagnosticError);
  });
});
