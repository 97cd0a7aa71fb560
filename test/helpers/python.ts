// The Python of the optional suites (`npm run test:optional`): VLMC_PYTHON, default python3, set up
// from scripts/requirements.txt. A suite runs only when asked for (VLMC_PARITY_OPTIONAL=1) and only
// where that interpreter imports what the suite needs; elsewhere it reports itself skipped.
import { spawnSync } from "node:child_process";

export const PYTHON = process.env["VLMC_PYTHON"] ?? "python3";

/** Whether the optional suites were asked for and PYTHON runs `probe` (Python statements) cleanly. */
export function optionalPython(probe: string): boolean {
  return (
    process.env["VLMC_PARITY_OPTIONAL"] === "1" && spawnSync(PYTHON, ["-c", probe], { stdio: "ignore" }).status === 0
  );
}
