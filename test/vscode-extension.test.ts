// The VS Code extension folder (editors/vscode): its grammar is the repository's, its manifest
// contributes the language and grammar it ships, and its launcher starts `vlmc lsp --stdio`
// (run here against stand-ins for the `vscode` and `vscode-languageclient` modules, which only
// exist inside VS Code and in the extension's own install).

import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "..");
const EXT = path.join(ROOT, "editors", "vscode");
const manifest = JSON.parse(fs.readFileSync(path.join(EXT, "package.json"), "utf8"));

describe("editors/vscode", () => {
  it("ships the repository's TextMate grammar, unchanged", () => {
    const grammar = manifest.contributes.grammars[0];
    expect(grammar).toMatchObject({ language: "vlm", scopeName: "source.vlm" });
    expect(fs.readFileSync(path.join(EXT, grammar.path), "utf8")).toBe(
      fs.readFileSync(path.join(ROOT, "grammar", "vlm.tmLanguage.json"), "utf8"),
    );
  });

  it("contributes the language for .vlm files with the files it names", () => {
    const language = manifest.contributes.languages[0];
    expect(language).toMatchObject({ id: "vlm", extensions: [".vlm"] });
    expect(fs.existsSync(path.join(EXT, language.configuration))).toBe(true);
    expect(manifest.activationEvents).toContain("onLanguage:vlm");
    expect(fs.existsSync(path.join(EXT, manifest.main))).toBe(true);
  });

  it("starts the configured command as a stdio language server for vlm documents", async () => {
    const created: { id: string; server: { run: { command: string; args: string[] } }; client: unknown }[] = [];
    const fakes: Record<string, unknown> = {
      vscode: {
        workspace: {
          workspaceFolders: [{ uri: { fsPath: ROOT } }],
          getConfiguration: () => ({
            get: (key: string) =>
              key === "command"
                ? "/opt/vlmc/bin/vlmc"
                : manifest.contributes.configuration.properties[`vlm.server.${key}`].default,
          }),
        },
      },
      "vscode-languageclient/node": {
        TransportKind: { stdio: 0 },
        LanguageClient: class {
          constructor(id: string, _name: string, server: never, client: unknown) {
            created.push({ id, server, client });
          }
          start() {
            return Promise.resolve();
          }
        },
      },
    };
    const require = createRequire(path.join(EXT, "extension.js"));
    const Module = require("node:module") as { _load: (request: string, ...rest: unknown[]) => unknown };
    const load = Module._load;
    Module._load = (request, ...rest) => (request in fakes ? fakes[request] : load(request, ...rest));
    try {
      const extension = require(path.join(EXT, "extension.js")) as { activate(ctx: unknown): Promise<void> };
      await extension.activate({ subscriptions: [] });
    } finally {
      Module._load = load;
    }
    expect(created).toHaveLength(1);
    expect(created[0]!.server.run).toMatchObject({
      command: "/opt/vlmc/bin/vlmc",
      args: ["lsp", "--stdio"],
      transport: 0,
    });
    expect(created[0]!.client).toMatchObject({ documentSelector: [{ scheme: "file", language: "vlm" }] });
  });
});
