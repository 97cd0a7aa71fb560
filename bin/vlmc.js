#!/usr/bin/env node
// The installed `vlmc` command: runs the compiled CLI and exits with its code.
import { runCli } from "../dist/src/cli/main.js";

process.exitCode = await runCli(process.argv.slice(2));
