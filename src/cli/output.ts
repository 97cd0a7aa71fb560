// Where a command's text goes: standard output, or a file written atomically (never half-written).

import { writeFileAtomic } from "../fs/atomic-write.js";
import type { CliIo } from "./common.js";

/** Writes `text` to `file` (or prints it); false, with a VLM4006 message, when the file cannot be written. */
export function writeOutput(io: CliIo, text: string, file: string | undefined): boolean {
  if (file === undefined) {
    io.out(text);
    return true;
  }
  try {
    writeFileAtomic(file, text);
    return true;
  } catch (e) {
    io.err(`error VLM4006: cannot write ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return false;
  }
}
