// The CLI's view of the outside world, injectable so tests run commands in-process.

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal: colour and progress bars only then. */
  readonly isTty: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTty: process.stderr.isTTY === true,
  env: process.env,
};

export function useColor(io: CliIo): boolean {
  return io.isTty && io.env["NO_COLOR"] === undefined && io.env["TERM"] !== "dumb";
}
