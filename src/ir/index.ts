// Public surface of the IR.
export * from "./dims.js";
export * from "./types.js";
export * from "./graph.js";
export * from "./printer.js";
export * from "./verify.js";
