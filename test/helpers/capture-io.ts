// A CliIo that keeps what a command prints, for tests that run the CLI in-process.
import type { CliIo } from "../../src/cli/common.js";

export interface CapturedIo {
  readonly io: CliIo;
  /** Everything printed to standard output so far. */
  readonly out: string;
  /** Everything printed to standard error so far. */
  readonly err: string;
}

export function captureIo(options: { isTty?: boolean; env?: Record<string, string | undefined> } = {}): CapturedIo {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    isTty: options.isTty ?? false,
    env: options.env ?? {},
  };
  return {
    io,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}
