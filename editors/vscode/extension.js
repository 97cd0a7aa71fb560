// The VS Code side of vlmc: starts `vlmc lsp` over stdio for .vlm files and hands the editor's
// requests to it. Highlighting comes from the TextMate grammar (syntaxes/, a copy of
// grammar/vlm.tmLanguage.json that a test keeps in step).

const fs = require("node:fs");
const path = require("node:path");
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

/** The configured command, else the workspace's own vlmc, else `vlmc` on the PATH. */
function serverCommand() {
  const config = vscode.workspace.getConfiguration("vlm.server");
  const configured = config.get("command");
  if (configured) return configured;
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const local = path.join(folder.uri.fsPath, "node_modules", ".bin", "vlmc");
    if (fs.existsSync(local)) return local;
  }
  return "vlmc";
}

function activate(context) {
  const command = serverCommand();
  const args = vscode.workspace.getConfiguration("vlm.server").get("args") ?? ["lsp", "--stdio"];
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const run = { command, args, transport: TransportKind.stdio, options: cwd ? { cwd } : {} };
  client = new LanguageClient(
    "vlm",
    "vlmc language server",
    { run, debug: run },
    { documentSelector: [{ scheme: "file", language: "vlm" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client?.stop();
}

module.exports = { activate, deactivate };
