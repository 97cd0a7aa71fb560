// The engine `vlmc generate` opens packages with. The package engine (package-engine.ts,
// `openPackageEngine`) is written beside this loop on its own branch; until it is merged this
// build has none, and `vlmc generate` says so (VLM5010) after checking every input. At merge the
// last line becomes: export { openPackageEngine as defaultEngineFactory } from "./package-engine.js";
export const defaultEngineFactory: import("./pipeline.js").EngineFactory | undefined = undefined;
