// `vlmc compile --package` in-process: exit codes and the refusal to overwrite a package folder.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { captureIo } from "../../test/helpers/capture-io.js";
import { tempFolders } from "../../test/temp-folders.js";
import { runCli } from "./main.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../test/fixtures/package");
const SPEC = path.join(FIXTURES, "tiny.vlm");
const temp = tempFolders("vlmc-cli-package-");

describe("vlmc compile --package", () => {
  it("writes the package, refuses to overwrite it (exit 1, VLM4300), and replaces it with --replace", async () => {
    const out = path.join(temp(), "pkg");
    const cli = captureIo();
    const args = [
      "compile",
      SPEC,
      "--model",
      "tiny_llava",
      "--package",
      out,
      "--checkpoint",
      path.join(FIXTURES, "llava"),
    ];
    expect(await runCli(args, cli.io)).toBe(0);
    expect(fs.existsSync(path.join(out, "decoder.onnx"))).toBe(true);
    expect(await runCli(args, cli.io)).toBe(1);
    expect(cli.err).toContain("VLM4300");
    expect(await runCli([...args, "--replace"], cli.io)).toBe(0);
  });

  it("refuses flags that do not go with --package (exit 2)", async () => {
    const cli = captureIo();
    expect(await runCli(["compile", SPEC, "--package", path.join(temp(), "p"), "-o", "x.onnx"], cli.io)).toBe(2);
    expect(await runCli(["compile", SPEC, "--replace"], cli.io)).toBe(2);
    expect(cli.err).toContain("--package");
  });
});
