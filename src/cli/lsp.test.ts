// `vlmc lsp` with a real client over stdio (vscode-jsonrpc): open a document, see `vlmc check`'s
// diagnostic, hover for a doc comment, a shape and a proved token count, jump into std, complete
// block arguments with their defaults, format.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SourceFile } from "../diagnostics/source.js";
import { check } from "../driver/check.js";
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from "vscode-jsonrpc/node";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const LLAVA = path.join(ROOT, "examples", "llava.vlm");
const uri = pathToFileURL(LLAVA).href;
// LLaVA-1.5 with T's bound raised past the context: `vlmc check` reports VLM3001 at the expect.
const original = fs.readFileSync(LLAVA, "utf8");
const broken = original.replace("ids: i64[B, T <= 3520]", "ids: i64[B, T <= 3600]");

interface Position {
  line: number;
  character: number;
}
interface Diag {
  code: string;
  range: { start: Position; end: Position };
  relatedInformation?: { location: { uri: string; range: { start: Position } }; message: string }[];
}

/** Line and column (0-based) of the first occurrence of `needle` in `text`, plus `shift` characters. */
function find(text: string, needle: string, shift = 0): Position {
  const at = text.indexOf(needle);
  if (at < 0) throw new Error(`not found: ${needle}`);
  const before = text.slice(0, at + shift).split("\n");
  return { line: before.length - 1, character: before[before.length - 1]!.length };
}

let server: ChildProcess;
let client: MessageConnection;
const published: { uri: string; diagnostics: Diag[] }[] = [];

beforeAll(async () => {
  server = spawn(process.execPath, [path.join(ROOT, "bin", "vlmc.js"), "lsp", "--stdio"], { cwd: ROOT });
  client = createMessageConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
  client.onNotification("textDocument/publishDiagnostics", (p: { uri: string; diagnostics: Diag[] }) => {
    published.push(p);
  });
  client.listen();
  const init = await client.sendRequest("initialize", {
    processId: process.pid,
    rootUri: pathToFileURL(ROOT).href,
    capabilities: {},
  });
  expect(init).toMatchObject({ capabilities: { hoverProvider: true, definitionProvider: true } });
  await client.sendNotification("initialized", {});
  await client.sendNotification("textDocument/didOpen", {
    textDocument: { uri, languageId: "vlm", version: 1, text: broken },
  });
});

afterAll(async () => {
  await client.sendRequest("shutdown").catch(() => {});
  client.dispose();
  server.kill();
});

async function diagnosticsFor(version: number, of = uri): Promise<Diag[]> {
  for (let i = 0; i < 200; i++) {
    const last = published.filter((p) => p.uri === of).at(-1) as { diagnostics: Diag[]; version?: number } | undefined;
    if (last && (last.version ?? 0) >= version) return last.diagnostics;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no diagnostics published");
}

describe("vlmc lsp over stdio", () => {
  it("publishes vlmc check's diagnostic, with its code and span, and clears it once fixed", async () => {
    const diags = await diagnosticsFor(1);
    expect(diags.map((d) => d.code)).toEqual(["VLM3001"]);
    expect(diags[0]!.range.start).toEqual(find(broken, "tokens(prefix) + T <= llm.context"));
    await client.sendNotification("textDocument/didChange", {
      textDocument: { uri, version: 2 },
      contentChanges: [{ text: original }],
    });
    // Fixed: what is left is exactly `vlmc check`'s diagnostics (none since layer selections excuse unused layers).
    const clean = await diagnosticsFor(2);
    const checked = check([LLAVA]).diagnostics;
    expect(clean.map((d) => d.code)).toEqual(checked.map((d) => d.code));
    const source = new SourceFile(LLAVA, original);
    expect(clean.map((d) => d.range.start.line + 1)).toEqual(checked.map((d) => source.position(d.span!.start).line));
  });

  it("shows an error raised inside a std block at the call site, with a note leading into std", async () => {
    const scratch = path.join(ROOT, "examples", "unsaved-scratch.vlm");
    const text = `import { mlp2x_gelu } from "std"

model m {
  fusion proj = mlp2x_gelu(32, 64)

  forward(x: f32[B, 4, 16]) {
    return y: proj(x)
  }
}
`;
    const scratchUri = pathToFileURL(scratch).href;
    await client.sendNotification("textDocument/didOpen", {
      textDocument: { uri: scratchUri, languageId: "vlm", version: 1, text },
    });
    const [diag] = await diagnosticsFor(1, scratchUri);
    expect(diag!.code).toBe("VLM2102");
    expect(diag!.range.start).toEqual(find(text, "proj(x)"));
    const note = diag!.relatedInformation![0]!;
    expect(note.location.uri).toBe(pathToFileURL(path.join(ROOT, "std", "projectors.vlm")).href);
    const std = fs.readFileSync(path.join(ROOT, "std", "projectors.vlm"), "utf8");
    expect(note.location.range.start).toEqual(find(std, "linear_1(x)"));
  });

  it("hovers: a std block's signature and doc comment, a variable's shape, a proved token count, a component's parameters", async () => {
    const hover = async (p: Position) =>
      (
        (await client.sendRequest("textDocument/hover", { textDocument: { uri }, position: p })) as {
          contents: { value: string };
        } | null
      )?.contents.value ?? "";
    const block = await hover(find(original, "clip_vision(", 3));
    expect(block).toContain("block clip_vision(");
    expect(block).toContain("CLIP's vision tower");
    expect(await hover(find(original, "prefix = proj(feats)", 1))).toContain("f32[B, 576, 4096]");
    expect(await hover(find(original, "expect tokens(prefix) == 576", 15))).toContain("tokens(prefix) = 576 (proved)");
    expect(await hover(find(original, "encoder vision", 9))).toContain("303,507,456 parameters");
  });

  it("jumps to a std block's definition", async () => {
    const loc = (await client.sendRequest("textDocument/definition", {
      textDocument: { uri },
      position: find(original, "mlp2x_gelu(", 2),
    })) as { uri: string; range: { start: Position } };
    expect(loc.uri).toBe(pathToFileURL(path.join(ROOT, "std", "projectors.vlm")).href);
    const std = fs.readFileSync(path.join(ROOT, "std", "projectors.vlm"), "utf8");
    expect(loc.range.start).toEqual(find(std, "block mlp2x_gelu", 6));
  });

  it("completes block arguments with their defaults, leaving out those already given", async () => {
    const items = (await client.sendRequest("textDocument/completion", {
      textDocument: { uri },
      position: find(original, "    eps: 1e-5,\n", 14),
    })) as { label: string; detail: string }[];
    const labels = items.map((i) => i.label);
    expect(labels).not.toContain("vocab");
    expect(labels).not.toContain("eps");
    // llava.vlm gives vocab, width, depth, heads, mlp, context and eps; kv_heads and theta are left.
    expect(items.map((i) => [i.label, i.detail])).toEqual([
      ["kv_heads", "default heads"],
      ["theta", "default 10000.0"],
    ]);
  });

  it("formats through the formatter", async () => {
    const messy = original.replace(
      "  fusion proj = mlp2x_gelu(1024, 4096)",
      "  fusion   proj =mlp2x_gelu( 1024,4096 )",
    );
    await client.sendNotification("textDocument/didChange", {
      textDocument: { uri, version: 3 },
      contentChanges: [{ text: messy }],
    });
    const edits = (await client.sendRequest("textDocument/formatting", {
      textDocument: { uri },
      options: { tabSize: 2, insertSpaces: true },
    })) as { newText: string }[];
    expect(edits).toHaveLength(1);
    expect(edits[0]!.newText).toBe(original);
  });
});
