// `vlmc compile --package` in-process: exit codes and the refusal to overwrite a package folder.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { tempFolders } from "../../test/temp-folders.js";
import type { CliIo } from "./common.js";
import { runCli } from "./main.js";

const FIXTURES = path.resolve(import.meta.dirname, "../../test/fixtures/package");
const SPEC = path.join(FIXTURES, "tiny.vlm");
const temp = tempFolders("vlmc-cli-package-");

describe("vlmc compile --package", () => {
  it("writes the package, refuses to overwrite it (exit 1, VLM4300), and replaces it with --replace", async () => {
    const out = path.join(temp(), "pkg");
    let err = "";
    const io: CliIo = {
      out: () => undefined,
      err: (t) => {
        err += t;
      },
      isTty: false,
      env: {},
    };
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
    expect(await runCli(args, io)).toBe(0);
    expect(fs.existsSync(path.join(out, "decoder.onnx"))).toBe(true);
    expect(await runCli(args, io)).toBe(1);
    expect(err).toContain("VLM4300");
    expect(await runCli([...args, "--replace"], io)).toBe(0);
  });

  it("refuses flags that do not go with --package (exit 2)", async () => {
    let err = "";
    const io: CliIo = {
      out: () => undefined,
      err: (t) => {
        err += t;
      },
      isTty: false,
      env: {},
    };
    expect(await runCli(["compile", SPEC, "--package", path.join(temp(), "p"), "-o", "x.onnx"], io)).toBe(2);
    expect(await runCli(["compile", SPEC, "--replace"], io)).toBe(2);
    expect(err).toContain("--package");
  });
});
