// Opening a package folder for generation: its manifest read and checked, and every file it names
// present, before any graph, tokenizer or image is opened. A folder missing a file is reported by
// name here, not as a failure deep inside onnxruntime or the tokenizer.

import * as fs from "node:fs";
import * as path from "node:path";
import { diagnostic, DiagnosticError } from "../../diagnostics/diagnostic.js";
import { MANIFEST_FILE, manifestProblem, type PackageManifest } from "../../onnx/manifest.js";

export interface PackageFolder {
  readonly dir: string;
  readonly manifest: PackageManifest;
}

/** The tokenizer every package needs; its absence gets its own code (VLM5003). */
export const TOKENIZER_FILE = "tokenizer.json";

/** Reads `dir`'s manifest and checks that the graphs and copied files it names exist. */
export function readPackageFolder(dir: string): PackageFolder {
  const manifestPath = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new DiagnosticError(
      diagnostic("VLM5001", `${dir} is not a folder`, undefined, {
        hint: "pass the folder `vlmc compile` wrote for a package (it holds vlmc-package.json)",
      }),
    );
  if (!fs.existsSync(manifestPath))
    throw new DiagnosticError(
      diagnostic("VLM5001", `${dir} has no ${MANIFEST_FILE}`, undefined, {
        hint: "pass the folder `vlmc compile` wrote for a package, or compile the model as a package again",
      }),
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
  } catch (e) {
    throw new DiagnosticError(
      diagnostic("VLM5002", `${manifestPath} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  const problem = manifestProblem(parsed);
  if (problem !== undefined)
    throw new DiagnosticError(
      diagnostic("VLM5002", `${manifestPath}: ${problem}`, undefined, {
        hint: "write the package again with this version of vlmc",
      }),
    );
  const manifest = parsed as PackageManifest;
  const needed = [
    ...Object.values(manifest.graphs).map((g) => g.file),
    ...manifest.files,
    ...(manifest.files.includes(TOKENIZER_FILE) ? [] : [TOKENIZER_FILE]),
  ];
  for (const file of needed) {
    if (fs.existsSync(path.join(dir, file))) continue;
    const code = file === TOKENIZER_FILE ? "VLM5003" : "VLM5001";
    throw new DiagnosticError(
      diagnostic(code, `${dir} is missing ${file}`, undefined, {
        hint:
          file === TOKENIZER_FILE
            ? "copy tokenizer.json from the checkpoint folder into the package, or compile the package from a checkpoint that has one"
            : `copy ${file} back into the package folder, or compile the package again`,
      }),
    );
  }
  return { dir, manifest };
}

/** Reads a JSON file of the package, or undefined when absent; malformed JSON is a VLM5002. */
export function readPackageJson(dir: string, file: string): Record<string, unknown> | undefined {
  const full = path.join(dir, file);
  if (!fs.existsSync(full)) return undefined;
  try {
    const value: unknown = JSON.parse(fs.readFileSync(full, "utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below with the same message as a non-object
  }
  throw new DiagnosticError(diagnostic("VLM5002", `${full} is not a JSON object`));
}
