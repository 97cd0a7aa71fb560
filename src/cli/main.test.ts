// The CLI in-process: exit codes, output formats, colour rules, version and help.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { VERSION } from "../version.js";
import { runCli } from "./main.js";
import { captureIo } from "../../test/helpers/capture-io.js";

function tempSpec(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-cli-"));
  const file = path.join(dir, "spec.vlm");
  fs.writeFileSync(file, text);
  return file;
}

const CLEAN = `block p(w) {\n  fc = linear(w, w)\n  forward(x) { return fc(x) }\n}\nmodel m {\n  encoder e = p(4)\n  forward(x: f32[B, 4]) { return e(x) }\n}\n`;
const BROKEN = `block p(w) {\n  fc = linear(w, w)\n  forward(x) { return fc(y) }\n}\n`;

describe("vlmc check", () => {
  it("exits 0 on a clean file", async () => {
    const c = captureIo();
    expect(await runCli(["check", tempSpec(CLEAN)], c.io)).toBe(0);
  });

  it("exits 1 with a located pretty diagnostic, uncoloured when not a terminal", async () => {
    const c = captureIo();
    expect(await runCli(["check", tempSpec(BROKEN)], c.io)).toBe(1);
    expect(c.err).toMatch(/spec\.vlm:3:26 - error VLM2001: /);
    expect(c.err).not.toContain("\x1b[");
  });

  it("colours only on a terminal and never with NO_COLOR", async () => {
    const tty = captureIo({ isTty: true });
    await runCli(["check", tempSpec(BROKEN)], tty.io);
    expect(tty.err).toContain("\x1b[");
    const noColor = captureIo({ env: { NO_COLOR: "1" }, isTty: true });
    await runCli(["check", tempSpec(BROKEN)], noColor.io);
    expect(noColor.err).not.toContain("\x1b[");
  });

  it("prints JSON diagnostics with positions", async () => {
    const c = captureIo();
    expect(await runCli(["check", tempSpec(BROKEN), "--format", "json"], c.io)).toBe(1);
    const diags = JSON.parse(c.out) as { code: string; line: number; column: number; endColumn: number }[];
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({
      code: "VLM2001",
      severity: "error",
      line: 3,
      column: 26,
      endLine: 3,
      endColumn: 27,
    });
  });

  it("prints GitHub annotations", async () => {
    const c = captureIo();
    await runCli(["check", tempSpec(BROKEN), "--format", "github"], c.io);
    expect(c.out).toMatch(/^::error file=.*spec\.vlm,line=3,col=26,endLine=3,endColumn=27,title=VLM2001::VLM2001: /);
  });

  it("exits 2 on usage errors", async () => {
    expect(await runCli(["check"], captureIo().io)).toBe(2);
    expect(await runCli(["check", "x.vlm", "--format", "xml"], captureIo().io)).toBe(2);
    expect(await runCli(["no-such-command"], captureIo().io)).toBe(2);
    const c = captureIo();
    expect(await runCli(["compile", tempSpec(CLEAN), "--quantize", "int4", "--int4-block", "48"], c.io)).toBe(2);
    expect(c.err).toContain("expected one of 16, 32, 64, 128, 256");
  });

  it("reports an unreadable file as a diagnostic, not a crash", async () => {
    const c = captureIo();
    expect(await runCli(["check", "/nonexistent/file.vlm"], c.io)).toBe(1);
    expect(c.err).toContain("VLM2007");
  });
});

describe("vlmc basics", () => {
  it("prints the version", async () => {
    const c = captureIo();
    expect(await runCli(["--version"], c.io)).toBe(0);
    expect(c.out.trim()).toBe(VERSION);
  });

  it("version matches package.json", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
  });

  it("prints help for the program and each command", async () => {
    for (const args of [["--help"], ["check", "--help"], ["fmt", "--help"], ["summary", "--help"]]) {
      const c = captureIo();
      expect(await runCli(args, c.io)).toBe(0);
      expect(c.out).toMatch(/Usage: vlmc/);
    }
  });
});

describe("vlmc summary", () => {
  it("prints JSON with params, components, stages and graphs", async () => {
    const c = captureIo();
    const spec = CLEAN.replace("  forward(x: f32", "  stage s { train e }\n  forward(x: f32");
    expect(await runCli(["summary", tempSpec(spec), "--json"], c.io)).toBe(0);
    const s = JSON.parse(c.out);
    expect(s.params).toEqual({ total: 20, trainable: 20, frozen: 0 });
    expect(s.components).toEqual([{ name: "e", role: "encoder", frozen: false, params: 20 }]);
    expect(s.stages).toEqual([{ name: "s", trainable: 20, frozen: 0 }]);
    expect(s.graphs[0].inputs).toEqual([{ name: "x", type: "f32[B, 4]" }]);
    expect(s.graphs[0].flops).toBe(2 * 4 * 4);
  });
});
