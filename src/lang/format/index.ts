// Public surface of the formatter.
export * from "./format.js";
