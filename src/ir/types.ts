// Tensor types: an element dtype and a shape of dims. Immutable.

import { dimEq, dimToString, type Dim } from "./dims.js";

export const DTYPES = ["f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool"] as const;
export type DType = (typeof DTYPES)[number];

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

export function isFloat(d: DType): boolean {
  return d === "f32" || d === "f16" || d === "bf16" || d === "f64";
}

export const DTYPE_BYTES: Record<DType, number> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  f64: 8,
  i64: 8,
  i32: 4,
  i8: 1,
  u8: 1,
  bool: 1,
};

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export function tensorType(dtype: DType, shape: readonly Dim[]): TensorType {
  return Object.freeze({ dtype, shape: Object.freeze([...shape]) });
}

export function shapeToString(shape: readonly Dim[]): string {
  return `[${shape.map(dimToString).join(", ")}]`;
}

export function typeToString(t: TensorType): string {
  return `${t.dtype}${shapeToString(t.shape)}`;
}

export function shapesEqual(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]!));
}
