// A StepEngine backed by transformers (scripts/generate/torch_engine.py) for the optional
// end-to-end test: the fixture checkpoint run in PyTorch without a cache, so vlmc's prompt ids,
// pixels and loop meet transformers' own forward. A test oracle, not an engine.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as path from "node:path";
import { createInterface, type Interface } from "node:readline";
import type { PackageManifest } from "../../src/onnx/manifest.js";
import type { PrefillRequest, StepEngine } from "../../src/runtime/generate/step-engine.js";

const SCRIPT = path.join(import.meta.dirname, "../../scripts/generate/torch_engine.py");

export class TorchStepEngine implements StepEngine {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly answers: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private stderr = "";

  constructor(
    readonly manifest: PackageManifest,
    python: string,
    checkpoint: string,
  ) {
    this.child = spawn(python, [SCRIPT, checkpoint]);
    this.child.stderr.on("data", (d) => {
      this.stderr += d;
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on("line", (line) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(line);
      else this.answers.push(line);
    });
  }

  private ask(request: object): Promise<Float32Array[]> {
    this.child.stdin.write(JSON.stringify(request) + "\n");
    return new Promise((resolve, reject) => {
      const take = (line: string) => resolve((JSON.parse(line).logits as number[][]).map((l) => Float32Array.from(l)));
      const ready = this.answers.shift();
      if (ready !== undefined) take(ready);
      else this.waiting = take;
      this.child.once("exit", (code) => reject(new Error(`torch engine exited ${code}: ${this.stderr}`)));
    });
  }

  prefill(request: PrefillRequest): Promise<Float32Array[]> {
    return this.ask({
      op: "prefill",
      rows: request.rows.map((r) => r.map(Number)),
      images: request.images.map((i) => ({ pixels: Array.from(i.pixels), count: i.count })),
    });
  }

  step(tokens: readonly bigint[]): Promise<Float32Array[]> {
    return this.ask({ op: "step", tokens: tokens.map(Number) });
  }

  async release(): Promise<void> {
    this.child.stdin.end();
    this.lines.close();
  }
}
