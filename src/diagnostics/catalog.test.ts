// The catalog's promises: one message template per code, every hole filled, and no new raise of the
// retired catch-all VLM2109.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CATALOG, type CatalogEntry, type DiagnosticCode } from "./catalog.js";
import { InternalError, message } from "./diagnostic.js";

const srcDir = new URL("..", import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith("catalog.ts") ? [p] : [];
  });
}

describe("catalog", () => {
  const templated = Object.entries(CATALOG).filter(([, e]) => (e as CatalogEntry).template !== undefined);

  it("gives each templated code its own message", () => {
    const templates = templated.map(([, e]) => (e as CatalogEntry).template);
    expect(new Set(templates).size).toBe(templates.length);
  });

  it("fills every hole and refuses a missing one", () => {
    expect(message("VLM2316", { what: "q", got: "int 3" })).toBe("q must be a tensor, got int 3");
    expect(() => message("VLM2316", { what: "q" })).toThrow(InternalError);
    expect(() => message("VLM2001")).toThrow(InternalError);
  });

  it("raises VLM2109 nowhere, and every templated code somewhere", () => {
    const text = sources(srcDir)
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    expect(text).not.toContain('"VLM2109"');
    for (const [code] of templated) expect(text, code).toContain(`"${code as DiagnosticCode}"`);
  });
});
