// Public surface of the diagnostics layer.
export * from "./catalog.js";
export * from "./diagnostic.js";
export * from "./source.js";
export * from "./render.js";
