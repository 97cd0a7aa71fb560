// Public surface of the static checks.
export * from "./resolve.js";
