// Semantic fuzzing: the promise that a spec `vlmc check` accepts compiles and runs. Each case takes
// a small valid spec, changes 1–3 of its sizes and flags (integer literals, symbol bounds, true /
// false), and then either `check` rejects it with coded diagnostics, or it compiles for portable
// and ort-cpu and every graph runs in onnxruntime at the smallest sizes (every symbol 1) and at the
// largest its bounds allow (capped, so cases stay fast). Anything else is a broken promise: an
// internal error (VLM9001), an error without a source location, an exception, a compile that fails
// after check passed, or onnxruntime refusing to load or run a graph.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { namedRng, type Rng } from "../../src/numerics/rng.js";
import { CATALOG } from "../../src/diagnostics/catalog.js";
import type { Diagnostic } from "../../src/diagnostics/diagnostic.js";
import { check } from "../../src/driver/check.js";
import { compile } from "../../src/driver/compile.js";
import { createSession } from "../../src/runtime/onnxruntime.js";
import { planFeeds } from "../../src/runtime/feeds.js";
import type { TargetName } from "../../src/target/target.js";

export interface Seed {
  readonly file: string;
  readonly text: string;
}

export type Outcome =
  | { readonly kind: "rejected"; readonly codes: readonly string[] }
  | { readonly kind: "ran"; readonly runs: number }
  | { readonly kind: "broken"; readonly why: string };

export interface FuzzCase {
  readonly index: number;
  readonly seed: string;
  readonly text: string;
  readonly edits: readonly string[];
}

const TARGETS: readonly TargetName[] = ["portable", "ort-cpu"];
/** The largest size a symbol takes in a run (its bound when smaller): big enough to differ from 1, small enough to be quick. */
const MAX_SIZE = 6;

/**
 * Small specs to mutate: the parity fixtures (one per std block family and seed system, under
 * `parity`) and every primitive with its options (`primitives`), weighted `primitivesWeight` times.
 */
export function fuzzSeeds(parity: string, primitives: string, primitivesWeight: number): Seed[] {
  const files = fs
    .readdirSync(parity)
    .filter((n) => fs.existsSync(path.join(parity, n, "spec.vlm")))
    .sort()
    .map((n) => path.join(parity, n, "spec.vlm"));
  return [...files, ...Array<string>(primitivesWeight).fill(primitives)].map((f) => {
    const file = path.relative(process.cwd(), f);
    return { file, text: withoutCheckpoints(fs.readFileSync(file, "utf8")) };
  });
}

/**
 * The spec with its checkpoints dropped (`weights vision from "…" {…}` keeps its key map, loses its
 * file): a mutant's sizes no longer match the checkpoint, which compile reports by design (check
 * never reads weights), so the mutants run on seeded random weights instead.
 */
function withoutCheckpoints(text: string): string {
  return text.replace(/(\bweights\b[^\n{]*?)\s+from\s+"[^"]*"/g, "$1");
}

interface Site {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** Integer literals (not inside names, floats or strings) and true/false, outside comments and imports. */
function sites(text: string): Site[] {
  const out: Site[] = [];
  const code = text.replace(/\/\/[^\n]*|"[^"\n]*"/g, (m) => " ".repeat(m.length));
  for (const m of code.matchAll(/(?<![\w.])(\d+|true|false)(?![\w.])/g))
    out.push({ start: m.index, end: m.index + m[0].length, text: m[0] });
  return out;
}

function replacement(rng: Rng, old: string): string {
  if (old === "true") return "false";
  if (old === "false") return "true";
  const n = Number(old);
  const choices = [0, 1, 2, 3, 4, 5, 6, 8, 12, 16, n - 1, n + 1, 2 * n, Math.floor(n / 2)].filter(
    (c) => c >= 0 && c !== n,
  );
  return String(choices[rng.below(choices.length)]);
}

/** Case `index` of a run seeded by `seed`: 1–3 edits of one seed spec, drawn from its own generator. */
export function makeCase(seeds: readonly Seed[], seed: number, index: number): FuzzCase {
  const rng = namedRng(`semantic-fuzz:${index}`, seed);
  const base = seeds[rng.below(seeds.length)]!;
  let text = base.text;
  const edits: string[] = [];
  const count = 1 + rng.below(3);
  for (let i = 0; i < count; i++) {
    const all = sites(text);
    if (all.length === 0) break;
    const s = all[rng.below(all.length)]!;
    const line = text.slice(0, s.start).split("\n").length;
    const to = replacement(rng, s.text);
    edits.push(`line ${line}: ${s.text} → ${to}`);
    text = text.slice(0, s.start) + to + text.slice(s.end);
  }
  return { index, seed: base.file, text, edits };
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function unsound(diagnostics: readonly Diagnostic[]): string | undefined {
  const bad = diagnostics.find((d) => d.code === "VLM9001" || !(d.code in CATALOG));
  return bad && `${bad.code}: ${bad.message}`;
}

/** Runs one case in `dir` (a fresh folder); never throws. */
export async function runCase(c: FuzzCase, dir: string): Promise<Outcome> {
  const overrides = new Map([[c.seed, c.text]]);
  try {
    const checked = check([c.seed], { overrides });
    const internal = unsound(checked.diagnostics);
    if (internal) return { kind: "broken", why: `check: ${internal}` };
    const errors = checked.diagnostics.filter((d) => d.severity === "error");
    const unplaced = errors.find((d) => d.span === undefined);
    if (unplaced) return { kind: "broken", why: `check: ${unplaced.code} has no source location: ${unplaced.message}` };
    if (errors.length > 0) return { kind: "rejected", codes: [...new Set(errors.map((d) => d.code))] };
    let runs = 0;
    for (const target of TARGETS) {
      const out = path.join(dir, target);
      const compiled = await compile([c.seed], { overrides, out, target, passes: ["-unused-values"] });
      const failed = compiled.diagnostics.filter((d) => d.severity === "error");
      if (failed.length > 0)
        return {
          kind: "broken",
          why: `check passed, compile --target ${target} failed: ${failed[0]!.code}: ${failed[0]!.message}`,
        };
      for (const file of compiled.files) {
        let session: Awaited<ReturnType<typeof createSession>>;
        try {
          session = await createSession(file.path);
        } catch (e) {
          return { kind: "broken", why: `${target} ${file.graph}: onnxruntime cannot load it: ${message(e)}` };
        }
        try {
          for (const size of [() => 1, (_: string, bound: number | undefined) => Math.min(bound ?? 3, MAX_SIZE)]) {
            const { feeds, sizes } = await planFeeds(file.path, {}, { seed: c.index, size });
            try {
              await session.run(feeds);
              runs++;
            } catch (e) {
              return {
                kind: "broken",
                why: `${target} ${file.graph} at ${JSON.stringify(sizes)}: onnxruntime failed: ${message(e)}`,
              };
            }
          }
        } finally {
          await session.release();
        }
      }
    }
    return { kind: "ran", runs };
  } catch (e) {
    return { kind: "broken", why: `exception: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` };
  }
}

export interface FuzzCounts {
  cases: number;
  rejected: number;
  /** How many rejected cases reported each code. */
  codes: Record<string, number>;
  ran: number;
  broken: { case: FuzzCase; why: string }[];
}

/** Runs cases `from` … `to − 1` of the run seeded by `seed`. */
export async function fuzz(seeds: readonly Seed[], seed: number, from: number, to: number): Promise<FuzzCounts> {
  const counts: FuzzCounts = { cases: 0, rejected: 0, codes: {}, ran: 0, broken: [] };
  for (let i = from; i < to; i++) {
    const c = makeCase(seeds, seed, i);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vlmc-semantic-fuzz-"));
    try {
      const outcome = await runCase(c, dir);
      counts.cases++;
      if (outcome.kind === "rejected") {
        counts.rejected++;
        for (const code of outcome.codes) counts.codes[code] = (counts.codes[code] ?? 0) + 1;
      } else if (outcome.kind === "ran") counts.ran++;
      else counts.broken.push({ case: c, why: outcome.why });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return counts;
}
