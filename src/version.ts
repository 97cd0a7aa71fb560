// The compiler's version, recorded in every model it writes.
export const VERSION = "0.1.0";
