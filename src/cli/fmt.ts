// `vlmc fmt`: canonical layout for .vlm files (--check to verify, --write to rewrite in place).

import * as fs from "node:fs";
import type { Command } from "commander";
import { formatText } from "../driver/check.js";
import { SourceFile } from "../diagnostics/source.js";
import { EXIT, printDiagnostics, type CliIo } from "./common.js";
import { writeFileAtomic } from "../fs/atomic-write.js";

export function fmtCommand(program: Command, io: CliIo, setExit: (code: number) => void): void {
  program
    .command("fmt")
    .description("format .vlm files: print the result, or --check / --write")
    .argument("<files...>", ".vlm files to format")
    .option("--check", "exit 1 if any file is not formatted; change nothing")
    .option("--write", "rewrite files in place")
    .action((files: string[], opts: { check?: boolean; write?: boolean }) => {
      let failed = false;
      for (const file of files) {
        let text: string;
        try {
          text = fs.readFileSync(file, "utf8");
        } catch {
          io.err(`error VLM2007: cannot read ${file}\n`);
          failed = true;
          continue;
        }
        const result = formatText(file, text);
        if (!result.ok) {
          const src = new SourceFile(file, text);
          printDiagnostics(io, result.diagnostics, (p) => (p === file ? src : undefined), "pretty");
          failed = true;
          continue;
        }
        if (opts.check) {
          if (result.text !== text) {
            io.err(`${file}: not formatted\n`);
            failed = true;
          }
        } else if (opts.write) {
          if (result.text !== text) writeFileAtomic(file, result.text);
        } else io.out(result.text);
      }
      setExit(failed ? EXIT.userError : EXIT.ok);
    });
}
