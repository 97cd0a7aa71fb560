// Generation over packages: the typed API behind `vlmc generate`.
export * from "./generate.js";
export * from "./image.js";
export * from "./package-folder.js";
export * from "./pipeline.js";
export * from "./prompt.js";
export * from "./sampling.js";
export type * from "./step-engine.js";
export * from "./text.js";
