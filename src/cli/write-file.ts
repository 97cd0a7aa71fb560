// Atomic text writes: a temporary file beside the target, then rename, so readers never see half a file.

import * as fs from "node:fs";
import * as path from "node:path";

export function writeFileAtomic(target: string, text: string): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
