// Atomic file writes: a temporary file beside the target, fsynced, then renamed over it, so a reader
// (or a crash) never sees half a file. Used for every file vlmc writes except ONNX models, whose
// writer streams a model and its data file as a pair (src/onnx/onnx-writer.ts).

import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";

export function writeFileAtomic(target: string, content: string | readonly Uint8Array[]): void {
  const chunks = typeof content === "string" ? [Buffer.from(content, "utf8")] : content;
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`,
  );
  let fd: number | undefined = fs.openSync(tmp, "w");
  try {
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.byteLength) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
    }
    fs.fsyncSync(fd);
    // Cleared before closing so a failed close is never retried on a possibly reused descriptor.
    const closing = fd;
    fd = undefined;
    fs.closeSync(closing);
    fs.renameSync(tmp, target);
  } catch (err) {
    try {
      if (fd !== undefined) fs.closeSync(fd);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    throw err;
  }
}
