// Values of the elaborator's interpreter: compile-time scalars and lists, symbolic integers,
// tensors (IR values), functions, and module instances.

import type * as A from "../parser/ast.js";
import type { Dim } from "../../ir/dims.js";
import type { Param, Role, Value } from "../../ir/graph.js";
import { dimToString } from "../../ir/dims.js";
import { typeToString } from "../../ir/types.js";

export type Val =
  | { k: "int"; v: Dim }
  | { k: "float"; v: number }
  | { k: "bool"; v: boolean }
  | { k: "str"; v: string }
  | { k: "none" }
  | { k: "list"; items: Val[] }
  | { k: "tuple"; items: Val[] }
  | { k: "tensor"; v: Value }
  | { k: "fn"; name: string }
  | { k: "param"; p: Param }
  | { k: "module"; inst: Inst }
  | { k: "stack"; items: Inst[]; path: string };

/** Ownership of parameters created while instantiating a top-level component. */
export interface Owner {
  readonly component: string;
  readonly role: Role | undefined;
  readonly frozen: boolean;
}

/** An instantiated module: a block or a module primitive, with its configuration and members. */
export interface Inst {
  readonly path: string;
  readonly blockName: string;
  readonly decl: A.BlockDecl | A.ModelDecl | undefined; // undefined for module primitives
  readonly file: string;
  readonly env: Env;
  /** Parameters of a module primitive, by local name (`weight`, `bias`). */
  readonly params: Map<string, Param>;
  readonly config: Map<string, Val>;
  readonly span: A.Expr["span"];
}

export class Env {
  private readonly vars = new Map<string, Val>();
  constructor(readonly parent?: Env) {}
  get(name: string): Val | undefined {
    return this.vars.get(name) ?? this.parent?.get(name);
  }
  set(name: string, v: Val): void {
    this.vars.set(name, v);
  }
  own(name: string): Val | undefined {
    return this.vars.get(name);
  }
}

export function describeVal(v: Val): string {
  switch (v.k) {
    case "int":
      return `int ${dimToString(v.v)}`;
    case "float":
      return `float ${v.v}`;
    case "bool":
      return `bool ${v.v}`;
    case "str":
      return `string "${v.v}"`;
    case "none":
      return "none";
    case "list":
      return `list of ${v.items.length}`;
    case "tuple":
      return `tuple of ${v.items.length}`;
    case "tensor":
      return `tensor ${typeToString(v.v.type)}`;
    case "fn":
      return `function ${v.name}`;
    case "param":
      return `parameter ${v.p.name}`;
    case "module":
      return `module ${v.inst.blockName}`;
    case "stack":
      return `stack of ${v.items.length} modules`;
  }
}

export const NONE: Val = { k: "none" };

/** Floats that came from dividing integers that do not divide exactly, for a precise error later. */
export const INEXACT_DIVISIONS = new WeakMap<Val, { a: number; b: number }>();
export const int = (v: Dim): Val => ({ k: "int", v });
export const bool = (v: boolean): Val => ({ k: "bool", v });
