// `vlmc lsp`: the language server, over stdio. It speaks the protocol (vscode-languageserver) and
// asks src/driver/language-service.ts everything: diagnostics as you type (debounced), hover,
// go to definition, completion of block arguments, whole-document formatting.

import * as fs from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Command } from "commander";
import {
  CompletionItemKind,
  createConnection,
  DiagnosticSeverity,
  MarkupKind,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type Diagnostic as LspDiagnostic,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { LanguageService } from "../driver/language-service.js";

/** Wait this long after the last keystroke before checking (elaborating a 7B LLaVA takes ~0.3 s). */
const DEBOUNCE_MS = 150;

function fileOf(uri: string): string | undefined {
  return uri.startsWith("file:") ? fileURLToPath(uri) : undefined;
}

/** Wires a connection to the language service; returns when the connection is listening. */
export function serve(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const service = new LanguageService();
  const pending = new Map<string, ReturnType<typeof setTimeout>>();

  const convert = (d: Diagnostic, doc: TextDocument): LspDiagnostic => ({
    range: { start: doc.positionAt(d.span?.start ?? 0), end: doc.positionAt(d.span?.end ?? 0) },
    severity: d.severity === "error" ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
    code: d.code,
    source: "vlmc",
    message: d.hint ? `${d.message}\n${d.hint}` : d.message,
    relatedInformation: (d.related ?? []).flatMap((r) => {
      const at = service.locate(r.span);
      if (!at) return [];
      const position = { line: at.line, character: at.character };
      return [
        {
          location: { uri: pathToFileURL(at.file).href, range: { start: position, end: position } },
          message: r.message,
        },
      ];
    }),
  });

  const publish = (doc: TextDocument) => {
    const file = fileOf(doc.uri);
    if (!file) return;
    let diagnostics: LspDiagnostic[];
    try {
      diagnostics = service.diagnostics(file).map((d) => convert(d, doc));
    } catch (e) {
      // A bug in vlmc must not take the server down with it: say so where the user looks.
      const message = `internal compiler error: ${e instanceof Error ? e.message : String(e)} (a bug in vlmc, not in your input)`;
      diagnostics = [
        {
          range: { start: doc.positionAt(0), end: doc.positionAt(0) },
          severity: DiagnosticSeverity.Error,
          code: "VLM9001",
          source: "vlmc",
          message,
        },
      ];
    }
    void connection.sendDiagnostics({ uri: doc.uri, version: doc.version, diagnostics });
  };

  documents.onDidChangeContent(({ document }) => {
    const file = fileOf(document.uri);
    if (file) service.setText(file, document.getText());
    clearTimeout(pending.get(document.uri));
    pending.set(
      document.uri,
      setTimeout(() => {
        pending.delete(document.uri);
        publish(document);
      }, DEBOUNCE_MS),
    );
  });
  documents.onDidClose(({ document }) => {
    const file = fileOf(document.uri);
    if (file) service.close(file);
    clearTimeout(pending.get(document.uri));
    void connection.sendDiagnostics({ uri: document.uri, diagnostics: [] });
  });

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      completionProvider: { triggerCharacters: ["(", ",", " "] },
      documentFormattingProvider: true,
    },
    serverInfo: { name: "vlmc" },
  }));

  const at = (uri: string, position: { line: number; character: number }) => {
    const doc = documents.get(uri);
    const file = fileOf(uri);
    return doc && file ? { doc, file, offset: doc.offsetAt(position) } : undefined;
  };

  connection.onHover(({ textDocument, position }) => {
    const here = at(textDocument.uri, position);
    const hover = here && service.hover(here.file, here.offset);
    return hover
      ? {
          contents: { kind: MarkupKind.Markdown, value: hover.contents },
          range: { start: here.doc.positionAt(hover.start), end: here.doc.positionAt(hover.end) },
        }
      : null;
  });

  connection.onDefinition(({ textDocument, position }) => {
    const here = at(textDocument.uri, position);
    const loc = here && service.definition(here.file, here.offset);
    if (!loc) return null;
    const uri = pathToFileURL(loc.file).href;
    const target = documents.get(uri) ?? TextDocument.create(uri, "vlm", 0, fs.readFileSync(loc.file, "utf8"));
    return { uri, range: { start: target.positionAt(loc.start), end: target.positionAt(loc.end) } };
  });

  connection.onCompletion(({ textDocument, position }) => {
    const here = at(textDocument.uri, position);
    if (!here) return [];
    return service.completion(here.file, here.offset).map((c) => ({
      label: c.label,
      detail: c.detail,
      insertText: c.insertText,
      kind: c.kind === "argument" ? CompletionItemKind.Property : CompletionItemKind.Class,
    }));
  });

  connection.onDocumentFormatting(({ textDocument }) => {
    const doc = documents.get(textDocument.uri);
    const file = fileOf(textDocument.uri);
    const text = doc && file ? service.format(file) : undefined;
    if (!doc || text === undefined || text === doc.getText()) return [];
    return [{ range: { start: doc.positionAt(0), end: doc.positionAt(doc.getText().length) }, newText: text }];
  });

  documents.listen(connection);
  connection.listen();
}

export function lspCommand(program: Command): void {
  program
    .command("lsp")
    .description("run the language server on stdin/stdout (for editors)")
    .option("--stdio", "talk over stdin/stdout (the default; accepted for editors that always pass it)")
    .action(() => {
      serve(createConnection(process.stdin, process.stdout));
      // The server runs until the client exits it; keep the command from returning.
      return new Promise<void>(() => {});
    });
}
