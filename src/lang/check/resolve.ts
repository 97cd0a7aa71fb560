// Name resolution and call-shape checks over a loaded program: undefined names, duplicates,
// unknown/missing/duplicate arguments, wrong kinds of names, roles, stages, policies.
// Reports through one `accept` callback; never throws for user mistakes.

import { closestName, diagnostic, type Diagnostic } from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";
import * as A from "../parser/ast.js";
import { STD_MODULE, type LoadedFile, type Program } from "../parser/program.js";
import { bindArguments } from "../bind.js";
import {
  BUILTINS,
  PACKAGE_KEYS,
  PACKAGE_REQUIRED,
  POLICY_KEYS,
  ROLES,
  SCALAR_TYPES,
  type BuiltinSig,
  type ParamSig,
} from "../builtins.js";

export type TopSymbol =
  | { kind: "const"; decl: A.ConstDecl; file: string }
  | { kind: "block"; decl: A.BlockDecl; file: string }
  | { kind: "model"; decl: A.ModelDecl; file: string };

type Local =
  | { kind: "value"; span: Span }
  | { kind: "config"; span: Span } // block parameter or const: a compile-time value
  | { kind: "component"; span: Span; block: BlockRef | undefined }
  | { kind: "param"; span: Span };

type BlockRef = { kind: "block"; decl: A.BlockDecl } | { kind: "builtin"; name: string; sig: BuiltinSig };

/** Top-level scope of every file (its own declarations plus what it imports). */
export interface ResolvedProgram {
  readonly scopes: ReadonlyMap<string, ReadonlyMap<string, TopSymbol>>;
  readonly std: ReadonlyMap<string, TopSymbol>;
}

const MISSING = "<missing>";

class Scope {
  private readonly names = new Map<string, Local>();
  constructor(private readonly parent?: Scope) {}
  get(name: string): Local | undefined {
    return this.names.get(name) ?? this.parent?.get(name);
  }
  has(name: string): boolean {
    return this.names.has(name);
  }
  set(name: string, local: Local): void {
    this.names.set(name, local);
  }
  ownEntries(): [string, Local][] {
    return [...this.names];
  }
  all(): string[] {
    return [...this.names.keys(), ...(this.parent?.all() ?? [])];
  }
}

export function resolveProgram(program: Program, accept: (d: Diagnostic) => void): ResolvedProgram {
  const declared = new Map<string, Map<string, TopSymbol>>();
  const std = new Map<string, TopSymbol>();

  // Pass 1: each file's own declarations (and the std namespace).
  for (const file of program.files.values()) {
    const own = new Map<string, TopSymbol>();
    for (const decl of file.ast.decls) {
      if (decl.kind === "import" || decl.name === MISSING) continue;
      const sym = { kind: decl.kind, decl, file: file.path } as TopSymbol;
      const prior = own.get(decl.name);
      if (prior) accept(duplicate(decl.name, decl.nameSpan, prior.decl.nameSpan));
      else own.set(decl.name, sym);
      if (file.isStd) {
        const stdPrior = std.get(decl.name);
        if (stdPrior && stdPrior !== sym && !own.has(decl.name))
          accept(duplicate(decl.name, decl.nameSpan, stdPrior.decl.nameSpan));
        if (!stdPrior) std.set(decl.name, sym);
      }
    }
    declared.set(file.path, own);
  }

  // Pass 2: imports.
  const scopes = new Map<string, Map<string, TopSymbol>>();
  for (const file of program.files.values()) {
    const scope = new Map(declared.get(file.path));
    for (const decl of file.ast.decls) {
      if (decl.kind !== "import") continue;
      const exports = decl.from === STD_MODULE ? std : declared.get(program.importTargets.get(decl) ?? "");
      if (!exports) continue; // unreadable or cyclic import: already reported
      for (const item of decl.items) {
        if (item.name === MISSING) continue;
        const sym = exports.get(item.name);
        const local = item.alias?.name ?? item.name;
        if (!sym) {
          const hint = suggestExport(item.name, [...exports.keys()]);
          accept(
            diagnostic(
              "VLM2008",
              `"${decl.from}" has no export named "${item.name}"`,
              item.nameSpan,
              hint ? { hint: `did you mean "${hint}"?` } : {},
            ),
          );
          continue;
        }
        const prior = scope.get(local);
        if (prior && prior !== sym) accept(duplicate(local, item.alias?.span ?? item.nameSpan, prior.decl.nameSpan));
        else scope.set(local, sym);
      }
    }
    scopes.set(file.path, scope);
  }

  for (const file of program.files.values()) new FileResolver(file, scopes.get(file.path)!, accept).run();
  return { scopes, std };
}

/**
 * "Did you mean" for an import: a near spelling, else the export sharing the longest prefix
 * (`clip_vit` → `clip_vision`), since exported names often differ in their ending only.
 */
export function suggestExport(name: string, exports: readonly string[]): string | undefined {
  const near = closestName(name, exports);
  if (near) return near;
  const prefix = (a: string, b: string) => {
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return i;
  };
  const needed = Math.max(4, Math.ceil(name.length * 0.6));
  let best: string | undefined;
  let bestLength = needed - 1;
  for (const e of exports) {
    const n = prefix(name, e);
    if (n > bestLength || (n === bestLength && best !== undefined && e.length < best.length)) {
      best = e;
      bestLength = n;
    }
  }
  return best;
}

function duplicate(name: string, span: Span, prior: Span): Diagnostic {
  return diagnostic("VLM2002", `"${name}" is already defined`, span, {
    related: [{ span: prior, message: "first defined here" }],
  });
}

class FileResolver {
  constructor(
    private readonly file: LoadedFile,
    private readonly top: ReadonlyMap<string, TopSymbol>,
    private readonly accept: (d: Diagnostic) => void,
  ) {}

  run(): void {
    const fileScope = new Scope();
    for (const decl of this.file.ast.decls) {
      if (decl.kind === "const") this.expr(decl.value, fileScope, "config");
      else if (decl.kind === "block") this.container(decl, false);
      else if (decl.kind === "model") this.container(decl, true);
    }
  }

  private lookupTop(name: string): TopSymbol | undefined {
    return this.top.get(name);
  }

  private undefinedName(name: string, span: Span, scope: Scope): void {
    if (name === MISSING) return;
    const candidates = [...scope.all(), ...this.top.keys(), ...BUILTINS.keys()];
    const hint = closestName(name, candidates);
    this.accept(
      diagnostic("VLM2001", `"${name}" is not defined`, span, hint ? { hint: `did you mean "${hint}"?` } : {}),
    );
  }

  private blockRefOf(name: string): BlockRef | undefined {
    const sym = this.lookupTop(name);
    if (sym?.kind === "block") return { kind: "block", decl: sym.decl };
    const b = BUILTINS.get(name);
    return b?.kind === "module" ? { kind: "builtin", name, sig: b } : undefined;
  }

  // ---- blocks and models ----

  private container(decl: A.BlockDecl | A.ModelDecl, isModel: boolean): void {
    // Members may shadow parameters (`mlp = mlp_block(width, mlp)` as HF names it): own scope.
    const paramScope = new Scope();
    this.params(decl.params, paramScope, "config");
    const scope = new Scope(paramScope);
    const entryNames = new Map<string, Span>();
    this.members(decl.members, scope, isModel, entryNames);
    const components = new Map<string, A.ComponentDecl>();
    collectComponents(decl.members, components);
    const trainable = new Set([
      ...components.keys(),
      ...flatMembers(decl.members).flatMap((m) => (m.kind === "param" && m.role ? [m.name] : [])),
    ]);
    for (const m of flatMembers(decl.members)) {
      if (m.kind === "forward" || m.kind === "graph") this.entry(m, scope);
      else if (m.kind === "stage") this.stage(m, trainable);
      else if (m.kind === "policy") this.policy(m, trainable);
      else if (m.kind === "package")
        this.packageDecl(
          m,
          components,
          entryNames,
          scope,
          new Set(flatMembers(decl.members).flatMap((p) => (p.kind === "param" ? [p.name] : []))),
        );
      else if (m.kind === "weights" && m.target && !components.has(m.target.name)) {
        const hint = closestName(m.target.name, components.keys());
        this.accept(
          diagnostic(
            "VLM2001",
            `no component named "${m.target.name}"`,
            m.target.span,
            hint ? { hint: `did you mean "${hint}"?` } : {},
          ),
        );
      }
    }
  }

  private params(params: readonly A.ParamDef[], scope: Scope, kind: "config" | "value"): void {
    for (const p of params) {
      if (p.default) this.expr(p.default, scope, "config");
      if (p.type) this.typeExpr(p.type, scope);
      if (scope.has(p.name)) this.accept(diagnostic("VLM2002", `parameter "${p.name}" is declared twice`, p.nameSpan));
      const typed = p.type && (p.type.dims !== undefined || !SCALAR_TYPES.has(p.type.name));
      scope.set(p.name, { kind: kind === "value" || typed ? "value" : "config", span: p.nameSpan });
    }
  }

  private typeExpr(t: A.TypeExpr, scope: Scope): void {
    const isDtype = BUILTINS.get(t.name)?.kind === "dtype";
    if (!isDtype && !SCALAR_TYPES.has(t.name)) {
      const hint = closestName(t.name, [
        ...SCALAR_TYPES,
        ...[...BUILTINS].filter(([, s]) => s.kind === "dtype").map(([n]) => n),
      ]);
      this.accept(
        diagnostic("VLM2011", `unknown type "${t.name}"`, t.nameSpan, hint ? { hint: `did you mean "${hint}"?` } : {}),
      );
    }
    if (t.dims && !isDtype && SCALAR_TYPES.has(t.name))
      this.accept(diagnostic("VLM2011", `"${t.name}" is not a tensor element type`, t.nameSpan));
    for (const d of t.dims ?? []) {
      // A bare name in a dim declares a symbol (usable in the body) unless it names a constant.
      if (d.value.kind === "name") {
        if (!scope.get(d.value.name) && !this.lookupTop(d.value.name))
          scope.set(d.value.name, { kind: "config", span: d.value.span });
      } else this.expr(d.value, scope, "config");
      if (d.bound) this.expr(d.bound, scope, "config");
    }
  }

  /** Declares member names (checking duplicates) and checks their right-hand sides. */
  private members(members: readonly A.Member[], scope: Scope, isModel: boolean, entries: Map<string, Span>): void {
    for (const m of members) {
      switch (m.kind) {
        case "const":
          this.expr(m.value, scope, "config");
          this.declare(scope, m.name, m.nameSpan, { kind: "config", span: m.nameSpan });
          break;
        case "param":
          if (m.role) this.role(m.role, isModel);
          for (const d of m.shape) this.expr(d, scope, "config");
          if (m.init) this.initializer(m.init, scope);
          this.declare(scope, m.name, m.nameSpan, { kind: "param", span: m.nameSpan });
          break;
        case "component": {
          if (m.role) this.role(m.role, isModel);
          if (m.frozen && !isModel)
            this.accept(diagnostic("VLM1006", "`frozen` applies to model components only", m.span));
          let inner = scope;
          if (m.repeat) {
            this.expr(m.repeat.count, scope, "config");
            if (m.repeat.index) {
              inner = new Scope(scope);
              inner.set(m.repeat.index.name, { kind: "config", span: m.repeat.index.span });
            }
          }
          const block = this.instantiation(m.value, inner);
          this.declare(scope, m.name, m.nameSpan, { kind: "component", span: m.nameSpan, block });
          break;
        }
        case "if": {
          // Each branch declares into its own scope; both branches' names are visible afterwards.
          this.expr(m.cond, scope, "config");
          for (const branch of [m.then, m.else ?? []]) {
            const inner = new Scope(scope);
            this.members(branch, inner, isModel, entries);
            for (const [name, local] of inner.ownEntries()) if (!scope.has(name)) scope.set(name, local);
          }
          break;
        }
        case "forward":
        case "graph": {
          const name = m.kind === "forward" ? "forward" : m.name;
          const span = m.kind === "forward" ? m.span : m.nameSpan;
          if (m.kind === "graph" && !isModel)
            this.accept(diagnostic("VLM1006", "named graphs belong in a model", span));
          const prior = entries.get(name);
          if (prior) this.accept(duplicate(name, span, prior));
          else entries.set(name, span);
          break;
        }
        case "stage":
        case "policy":
        case "package":
        case "weights":
          if (!isModel) this.accept(diagnostic("VLM1006", `\`${m.kind}\` belongs in a model, not a block`, m.span));
          break;
      }
    }
  }

  private declare(scope: Scope, name: string, span: Span, local: Local): void {
    if (name === MISSING) return;
    if (scope.has(name)) {
      this.accept(duplicate(name, span, scope.get(name)!.span));
      return;
    }
    scope.set(name, local);
  }

  private role(role: A.Ident, isModel: boolean): void {
    if (!isModel)
      this.accept(diagnostic("VLM1006", `role "${role.name}" is only allowed on model components`, role.span));
    else if (!ROLES.has(role.name)) {
      const hint = closestName(role.name, ROLES);
      this.accept(
        diagnostic(
          "VLM1005",
          `unknown role "${role.name}" (roles: encoder, fusion, head)`,
          role.span,
          hint ? { hint: `did you mean "${hint}"?` } : {},
        ),
      );
    }
  }

  private initializer(init: A.Expr, scope: Scope): void {
    const callee = init.kind === "call" ? init.callee : init;
    if (callee.kind !== "name") {
      this.accept(
        diagnostic(
          "VLM2005",
          "a parameter initialiser must be zeros, ones, full(v), normal(std) or uniform(bound)",
          init.span,
        ),
      );
      return;
    }
    const sig = BUILTINS.get(callee.name);
    if (sig?.kind !== "initializer") {
      if (!sig && !scope.get(callee.name) && !this.lookupTop(callee.name)) {
        const hint = closestName(
          callee.name,
          [...BUILTINS].filter(([, s]) => s.kind === "initializer").map(([n]) => n),
        );
        this.accept(
          diagnostic(
            "VLM2001",
            `unknown initialiser "${callee.name}"`,
            callee.span,
            hint ? { hint: `did you mean "${hint}"?` } : {},
          ),
        );
      } else this.accept(diagnostic("VLM2005", `"${callee.name}" is not an initialiser`, callee.span));
      return;
    }
    if (init.kind === "call") this.args(init, sig.params, `initialiser "${callee.name}"`, scope, "config", false);
  }

  /** A component's right-hand side: a call of a block or module primitive. */
  private instantiation(value: A.Expr, scope: Scope): BlockRef | undefined {
    const call = value.kind === "call" ? value : undefined;
    const callee = call ? call.callee : value;
    if (callee.kind !== "name") {
      const hint =
        value.kind === "list"
          ? "for a stack of blocks configured by their position, write `name = repeat(n, i) block(..., i)` and use `i` (with `if` in the block) where they differ"
          : undefined;
      this.accept(
        diagnostic(
          "VLM2005",
          "a component must be an instance of a block, e.g. `norm = layer_norm(768)`",
          value.span,
          hint ? { hint } : {},
        ),
      );
      // The items are block calls; checking them as calls would only repeat the same fault.
      const parts =
        value.kind === "list"
          ? value.items.flatMap((i) => (i.kind === "call" ? i.args.map((a) => a.value) : [i]))
          : [value];
      for (const part of parts) this.expr(part, scope, "config");
      return undefined;
    }
    const ref = this.blockRefOf(callee.name);
    if (!ref) {
      const sym = this.lookupTop(callee.name) ?? BUILTINS.get(callee.name);
      if (callee.name === MISSING) return undefined;
      if (sym || scope.get(callee.name))
        this.accept(
          diagnostic(
            "VLM2005",
            `"${callee.name}" is not a block, so it cannot be instantiated as a component`,
            callee.span,
          ),
        );
      else this.undefinedName(callee.name, callee.span, scope);
      if (call) for (const a of call.args) this.expr(a.value, scope, "config");
      return undefined;
    }
    const params =
      ref.kind === "block"
        ? ref.decl.params.map((p) => ({ name: p.name, required: p.default === undefined }))
        : ref.sig.params;
    if (call) this.args(call, params, `block "${callee.name}"`, scope, "config", false);
    else if (params.some((p) => p.required))
      this.args(
        { kind: "call", callee, args: [], span: value.span },
        params,
        `block "${callee.name}"`,
        scope,
        "config",
        false,
      );
    return ref;
  }

  private args(
    call: Extract<A.Expr, { kind: "call" }>,
    params: readonly ParamSig[],
    what: string,
    scope: Scope,
    ctx: "config" | "forward",
    variadic: boolean,
  ): void {
    for (const a of call.args) this.expr(a.value, scope, ctx);
    for (const d of bindArguments(call.args, { what, params, variadic }, call.span).errors) this.accept(d);
  }

  // ---- entry points and statements ----

  private entry(m: A.ForwardDecl | A.GraphDecl, memberScope: Scope): void {
    const scope = new Scope(memberScope);
    this.params(m.params, scope, "value");
    this.statements(m.body, scope);
  }

  private statements(stmts: readonly A.Stmt[], scope: Scope): void {
    for (const s of stmts) {
      switch (s.kind) {
        case "const":
          this.expr(s.value, scope, "forward");
          scope.set(s.name, { kind: "config", span: s.nameSpan });
          break;
        case "assign":
          this.expr(s.value, scope, "forward");
          for (const t of s.targets) if (t.name !== MISSING) scope.set(t.name, { kind: "value", span: t.span });
          break;
        case "return":
          for (const item of s.items) this.expr(item.value, scope, "forward");
          break;
        case "expect":
          this.expr(s.cond, scope, "forward");
          break;
        case "if":
          this.expr(s.cond, scope, "forward");
          this.statements(s.then, scope);
          if (s.else) this.statements(s.else, scope);
          break;
        case "for": {
          this.expr(s.iterable, scope, "forward");
          const inner = scope;
          inner.set(s.name.name, { kind: "value", span: s.name.span });
          this.statements(s.body, inner);
          break;
        }
      }
    }
  }

  private stage(m: A.StageDecl, components: ReadonlySet<string>): void {
    for (const t of m.trains) {
      if (t.name === MISSING || components.has(t.name)) continue;
      const hint = closestName(t.name, components.keys());
      this.accept(
        diagnostic(
          "VLM2001",
          `stage "${m.name}" trains "${t.name}", which is not a component`,
          t.span,
          hint ? { hint: `did you mean "${hint}"?` } : {},
        ),
      );
    }
  }

  private policy(m: A.PolicyDecl, components: ReadonlySet<string>): void {
    const sel = m.selector.name;
    if (sel !== MISSING && !components.has(sel) && !ROLES.has(sel) && sel !== "frozen" && sel !== "trainable") {
      const hint = closestName(sel, [...components.keys(), ...ROLES, "frozen", "trainable"]);
      this.accept(
        diagnostic(
          "VLM2013",
          `policy selector "${sel}" is not a component, a role, "frozen" or "trainable"`,
          m.selector.span,
          hint ? { hint: `did you mean "${hint}"?` } : {},
        ),
      );
    }
    for (const e of m.entries) {
      const allowed = POLICY_KEYS.get(e.key);
      if (!allowed) {
        const hint = closestName(e.key, POLICY_KEYS.keys());
        this.accept(
          diagnostic(
            "VLM2013",
            `unknown policy key "${e.key}" (keys: ${[...POLICY_KEYS.keys()].join(", ")})`,
            e.keySpan,
            hint ? { hint: `did you mean "${hint}"?` } : {},
          ),
        );
        continue;
      }
      const value = A.entryWord(e.value);
      if (value === undefined || !allowed.has(value)) {
        this.accept(diagnostic("VLM2013", `policy "${e.key}" must be one of ${[...allowed].join(", ")}`, e.value.span));
      }
    }
  }

  private packageDecl(
    m: A.PackageDecl,
    components: ReadonlyMap<string, unknown>,
    graphs: ReadonlyMap<string, Span>,
    scope: Scope,
    params: ReadonlySet<string>,
  ): void {
    const seen = new Set<string>();
    for (const e of m.entries) {
      const kind = PACKAGE_KEYS.get(e.key);
      if (!kind) {
        const hint = closestName(e.key, PACKAGE_KEYS.keys());
        this.accept(
          diagnostic(
            "VLM3200",
            `unknown package key "${e.key}" (keys: ${[...PACKAGE_KEYS.keys()].join(", ")})`,
            e.keySpan,
            hint ? { hint: `did you mean "${hint}"?` } : {},
          ),
        );
        continue;
      }
      if (seen.has(e.key)) this.accept(diagnostic("VLM3200", `package key "${e.key}" is given twice`, e.keySpan));
      seen.add(e.key);
      if (kind === "int" || kind === "pinpoints") {
        this.expr(e.value, scope, "config");
        continue;
      }
      const word = e.value.kind === "name" ? e.value.name : undefined;
      const names = kind === "graph" ? graphs : kind === "component" ? components : kind === "param" ? params : kind;
      if (word === undefined || !names.has(word)) {
        const what =
          kind === "graph"
            ? "a graph of this model"
            : kind === "component"
              ? "a component"
              : kind === "param"
                ? "a parameter of this model"
                : "one of";
        const choices = [...names.keys()].join(", ");
        this.accept(diagnostic("VLM3200", `package "${e.key}" must name ${what} (${choices})`, e.value.span));
      }
    }
    const missing = PACKAGE_REQUIRED.filter((k) => !seen.has(k));
    if (missing.length > 0)
      this.accept(diagnostic("VLM3200", `the package declaration lacks ${missing.join(", ")}`, m.span));
  }

  // ---- expressions ----

  private expr(e: A.Expr, scope: Scope, ctx: "config" | "forward"): void {
    switch (e.kind) {
      case "name":
        this.name(e.name, e.span, scope);
        return;
      case "list":
        for (const i of e.items) this.expr(i, scope, ctx);
        return;
      case "unary":
        this.expr(e.operand, scope, ctx);
        return;
      case "binary":
        this.expr(e.left, scope, ctx);
        this.expr(e.right, scope, ctx);
        return;
      case "member":
        this.member(e, scope, ctx);
        return;
      case "index":
        this.expr(e.object, scope, ctx);
        for (const i of e.items) {
          if (i.kind === "at") this.expr(i.index, scope, ctx);
          else for (const part of [i.start, i.stop, i.step]) if (part) this.expr(part, scope, ctx);
        }
        return;
      case "call":
        this.call(e, scope, ctx);
        return;
      default:
        return;
    }
  }

  private name(name: string, span: Span, scope: Scope): void {
    if (name === MISSING || scope.get(name) || this.lookupTop(name) || BUILTINS.has(name)) return;
    this.undefinedName(name, span, scope);
  }

  private member(e: Extract<A.Expr, { kind: "member" }>, scope: Scope, ctx: "config" | "forward"): void {
    this.expr(e.object, scope, ctx);
    const block = this.componentBlock(e.object, scope);
    if (block?.kind !== "block" || e.name === MISSING) return;
    const names = new Set([...block.decl.params.map((p) => p.name), ...memberNames(block.decl.members)]);
    if (names.has(e.name)) return;
    const hint = closestName(e.name, names);
    this.accept(
      diagnostic(
        "VLM2001",
        `block "${block.decl.name}" has no member or parameter "${e.name}"`,
        e.nameSpan,
        hint ? { hint: `did you mean "${hint}"?` } : {},
      ),
    );
  }

  /** The block a component expression (`llm`, `llm.model`) instantiates, when known statically. */
  private componentBlock(e: A.Expr, scope: Scope): BlockRef | undefined {
    if (e.kind === "name") {
      const local = scope.get(e.name);
      return local?.kind === "component" ? local.block : undefined;
    }
    if (e.kind === "member") {
      const outer = this.componentBlock(e.object, scope);
      if (outer?.kind !== "block") return undefined;
      const inner = new Map<string, A.ComponentDecl>();
      collectComponents(outer.decl.members, inner);
      const c = inner.get(e.name);
      const callee = c ? (c.value.kind === "call" ? c.value.callee : c.value) : undefined;
      return callee?.kind === "name" ? this.blockRefOf(callee.name) : undefined;
    }
    if (e.kind === "index") {
      return this.componentBlock(e.object, scope);
    }
    return undefined;
  }

  private call(e: Extract<A.Expr, { kind: "call" }>, scope: Scope, ctx: "config" | "forward"): void {
    const callee = e.callee;
    if (callee.kind === "name") {
      const local = scope.get(callee.name);
      if (local) {
        if (local.kind === "component") {
          this.componentCall(e, local.block, callee.name, scope, ctx);
          return;
        }
        // A compile-time value may hold a function (`act: gelu`); only parameters are surely not callable.
        if (local.kind === "param") {
          this.accept(diagnostic("VLM2010", `"${callee.name}" is a parameter, not something to call`, callee.span));
          for (const a of e.args) this.expr(a.value, scope, ctx);
          return;
        }
        // A local value may hold a function (an activation passed as `act: gelu`).
        for (const a of e.args) this.expr(a.value, scope, ctx);
        return;
      }
      const sym = this.lookupTop(callee.name);
      if (sym) {
        const why =
          sym.kind === "block"
            ? `block "${callee.name}" must be declared as a sub-module (\`name = ${callee.name}(...)\`) before it is called`
            : `"${callee.name}" is a ${sym.kind}, not a function`;
        this.accept(diagnostic("VLM2010", why, callee.span));
        for (const a of e.args) this.expr(a.value, scope, ctx);
        return;
      }
      const builtin = BUILTINS.get(callee.name);
      if (builtin) {
        if (builtin.kind === "module") {
          this.accept(
            diagnostic(
              "VLM2010",
              `"${callee.name}" owns parameters: declare it as a sub-module (\`name = ${callee.name}(...)\`) and call that`,
              callee.span,
            ),
          );
          for (const a of e.args) this.expr(a.value, scope, ctx);
        } else this.args(e, builtin.params, `"${callee.name}"`, scope, ctx, builtin.variadic === true);
        return;
      }
      this.undefinedName(callee.name, callee.span, scope);
      for (const a of e.args) this.expr(a.value, scope, ctx);
      return;
    }
    this.expr(callee, scope, ctx);
    const block = this.componentBlock(callee, scope);
    if (block) this.componentCall(e, block, describe(callee), scope, ctx);
    else for (const a of e.args) this.expr(a.value, scope, ctx);
  }

  private componentCall(
    e: Extract<A.Expr, { kind: "call" }>,
    block: BlockRef | undefined,
    name: string,
    scope: Scope,
    ctx: "config" | "forward",
  ): void {
    if (!block) {
      for (const a of e.args) this.expr(a.value, scope, ctx);
      return;
    }
    const forward =
      block.kind === "block" ? block.decl.members.find((m): m is A.ForwardDecl => m.kind === "forward") : undefined;
    const params =
      block.kind === "builtin"
        ? (block.sig.forward ?? [])
        : forward
          ? forward.params.map((p) => ({ name: p.name, required: p.default === undefined }))
          : undefined;
    if (!params) {
      // A repeat stack or a block without forward: arguments still resolve.
      for (const a of e.args) this.expr(a.value, scope, ctx);
      return;
    }
    this.args(e, params, `"${name}"`, scope, ctx, false);
  }
}

function describe(e: A.Expr): string {
  if (e.kind === "name") return e.name;
  if (e.kind === "member") return `${describe(e.object)}.${e.name}`;
  if (e.kind === "index") return `${describe(e.object)}[…]`;
  return "expression";
}

function flatMembers(members: readonly A.Member[]): A.Member[] {
  const out: A.Member[] = [];
  for (const m of members) {
    out.push(m);
    if (m.kind === "if") out.push(...flatMembers(m.then), ...flatMembers(m.else ?? []));
  }
  return out;
}

function collectComponents(members: readonly A.Member[], into: Map<string, A.ComponentDecl>): void {
  for (const m of flatMembers(members)) if (m.kind === "component") into.set(m.name, m);
}

function memberNames(members: readonly A.Member[]): string[] {
  return flatMembers(members).flatMap((m) =>
    m.kind === "component" || m.kind === "param" || m.kind === "const" ? [m.name] : m.kind === "graph" ? [m.name] : [],
  );
}
