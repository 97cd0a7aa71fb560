// The package root: everything the CLI does is available here as a typed API.
export { VERSION } from "./version.js";
export * from "./api.js";
export * from "./diagnostics/index.js";
export * from "./parser/index.js";
export * from "./check/index.js";
