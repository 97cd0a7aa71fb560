// `vlmc graph`: a picture of a model (components, blocks or ops) as SVG, DOT or an interactive
// HTML page, printed or written to -o FILE.

import { Option, type Command } from "commander";
import {
  drawGraph,
  GRAPH_FORMATS,
  GRAPH_LEVELS,
  GRAPH_TARGETS,
  type GraphFormat,
  type GraphLevel,
  type GraphTarget,
} from "../driver/graph.js";
import type { CliIo } from "./common.js";
import { EXIT, printDiagnostics } from "./common.js";
import { writeOutput } from "./output.js";

interface GraphFlags {
  model?: string;
  graph?: string;
  level: GraphLevel;
  block?: string;
  target: GraphTarget;
  format?: GraphFormat;
  output?: string;
}

/** The format a file name implies (`llava.svg`), else SVG. */
function formatFor(output: string | undefined): GraphFormat {
  const ext = output?.split(".").pop();
  return ext === "html" || ext === "dot" ? ext : "svg";
}

export function graphCommand(program: Command, io: CliIo, setExit: (code: number) => void): void {
  program
    .command("graph")
    .description("draw a model: components, blocks (repeats drawn once) or ops, as SVG, DOT or an HTML page")
    .argument("<file>", ".vlm file")
    .option("--model <name>", "the model to draw (needed when the file has several)")
    .option("--graph <name>", "the entry point to draw (default: the first, usually forward)")
    .addOption(new Option("--level <level>", "level of detail").choices([...GRAPH_LEVELS]).default("components"))
    .option("--block <path>", "at --level ops: only the ops under this block (vision/encoder/layers/0)")
    .addOption(
      new Option("--target <target>", "at --level ops: apply this target's fusions")
        .choices([...GRAPH_TARGETS])
        .default("portable"),
    )
    .addOption(
      new Option("--format <format>", "output format (default: from -o's extension, else svg)").choices([
        ...GRAPH_FORMATS,
      ]),
    )
    .option("-o, --output <file>", "write to this file instead of standard output")
    .action(async (file: string, opts: GraphFlags) => {
      const result = await drawGraph([file], {
        ...(opts.model !== undefined ? { model: opts.model } : {}),
        ...(opts.graph !== undefined ? { graph: opts.graph } : {}),
        ...(opts.block !== undefined ? { block: opts.block } : {}),
        level: opts.level,
        target: opts.target,
        format: opts.format ?? formatFor(opts.output),
      });
      printDiagnostics(io, result.diagnostics, result.sources, "pretty");
      if (result.text === undefined) {
        setExit(EXIT.userError);
        return;
      }
      setExit(writeOutput(io, result.text, opts.output) ? EXIT.ok : EXIT.userError);
    });
}
