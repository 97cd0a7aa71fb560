// AST → IR. An interpreter over the AST: evaluates constants and block arguments, unrolls
// `repeat`, resolves `if`, instantiates blocks (creating parameters with their full names and
// owners), and runs each entry point's body to build a typed graph. User errors become
// diagnostics at the DSL text that caused them.

import {
  DiagnosticError,
  InternalError,
  diagnostic,
  type Diagnostic,
  type Related,
} from "../../diagnostics/diagnostic.js";
import type { Span } from "../../diagnostics/source.js";
import * as A from "../parser/ast.js";
import type { Program } from "../parser/program.js";
import type { ResolvedProgram, TopSymbol } from "../check/resolve.js";
import {
  dimAdd,
  dimDiv,
  dimMax,
  dimMin,
  dimMul,
  dimNeg,
  dimSub,
  dimToString,
  isStatic,
  sym,
  type Dim,
} from "../../ir/dims.js";
import {
  Graph,
  type Value,
  type ComponentInfo,
  type Initializer,
  type KeyRule,
  type IrModule,
  type PackageEntry,
  type PackagePlan,
  type Param,
  type PolicyRule,
  type Role,
  type StagePlan,
} from "../../ir/graph.js";
import { isDType, shapeToString, tensorType, type DType, type TensorType } from "../../ir/types.js";
import { bindArguments, type Binding, type CallArg, type Callee } from "../bind.js";
import { BUILTINS, PACKAGE_KEYS } from "../builtins.js";
import {
  asBool,
  asInt,
  asNumber,
  asDim,
  asTensor,
  emit1,
  fail,
  failWith,
  FUNCTIONS,
  tensorBinary,
  type Bound,
  type OpCtx,
} from "./ops.js";
import { attention, callPrimitive, instantiatePrimitive } from "./primitives.js";
import { bool, describeVal, Env, INEXACT_DIVISIONS, int, NONE, type Inst, type Owner, type Val } from "./values.js";

/** Elaboration refuses models beyond this many parameters before allocating anything. */
export const MAX_PARAMETERS = 1e12;
const MAX_CALL_DEPTH = 200;
const MAX_NOTES = 8;

export interface TokenFact {
  readonly label: string;
  readonly value: Dim;
  readonly span: Span;
  /** Set on an `expect` over bounded symbols that held: the inequality as proved, with the bounds. */
  readonly proved?: string;
  /** The tensor measured, when `tokens()` names a variable: pictures label its edges with the fact. */
  readonly tensor?: Value;
}

/** A name an entry point's body assigns a tensor to, and its type there (what an editor's hover shows). */
export interface NameBinding {
  readonly name: string;
  readonly span: Span;
  readonly type: TensorType;
}

export interface ElaborationResult {
  readonly module: IrModule | undefined;
  readonly tokens: ReadonlyMap<Graph, TokenFact[]>;
  readonly bindings?: ReadonlyMap<Graph, NameBinding[]>;
}

interface Ctx extends OpCtx {
  readonly file: string;
  readonly tokens: TokenFact[] | undefined;
  readonly bindings?: NameBinding[];
}

type Flow = { returned: Val } | undefined;

export class Elaborator {
  private readonly params: Param[] = [];
  private totalElements = 0;
  private depth = 0;
  private readonly constCache = new Map<A.ConstDecl, Val | "pending">();
  private readonly constFiles = new Set<string>();
  /** Where the block being elaborated was instantiated or called, outermost first. */
  private readonly sites: Related[] = [];

  constructor(
    private readonly program: Program,
    private readonly resolved: ResolvedProgram,
    private readonly accept: (d: Diagnostic) => void,
  ) {}

  // ---- entry ----

  elaborateModel(decl: A.ModelDecl, file: string, only?: { graph?: string }): ElaborationResult {
    const tokens = new Map<Graph, TokenFact[]>();
    const bindings = new Map<Graph, NameBinding[]>();
    try {
      const components: ComponentInfo[] = [];
      const stages: StagePlan[] = [];
      const policies: PolicyRule[] = [];
      const weights: IrModule["weights"][number][] = [];
      let packagePlan: PackagePlan | undefined;
      const env = new Env();
      const root: Inst = {
        path: "",
        blockName: decl.name,
        decl,
        file,
        env,
        params: new Map(),
        config: new Map(),
        span: decl.span,
      };
      const ctx: Ctx = { graph: undefined, scope: "", span: decl.span, file, tokens: undefined };
      for (const p of decl.params)
        env.set(
          p.name,
          p.default
            ? this.eval(p.default, env, ctx)
            : fail("VLM2004", `model parameter "${p.name}" needs a default value`, p.span),
        );
      this.members(decl.members, root, undefined, ctx, components);
      const entries: (A.ForwardDecl | A.GraphDecl)[] = [];
      this.collect(decl.members, env, ctx, (m) => {
        if (m.kind === "forward" || m.kind === "graph") entries.push(m);
        else if (m.kind === "stage") stages.push({ name: m.name, trains: m.trains.map((t) => t.name) });
        else if (m.kind === "policy") policies.push(policyRule(m));
        else if (m.kind === "weights") weights.push(weightsDeclaration(m));
        else if (m.kind === "package") {
          if (packagePlan) fail("VLM3200", "a model declares at most one package", m.span);
          packagePlan = this.packagePlan(m, env, ctx);
        }
      });
      const graphs: Graph[] = [];
      for (const entry of entries) {
        const name = entry.kind === "forward" ? "forward" : entry.name;
        if (only?.graph !== undefined && only.graph !== name) continue;
        const facts: TokenFact[] = [];
        const bound: NameBinding[] = [];
        const g = this.entryGraph(entry, name, root, file, facts, bound);
        if (g) {
          graphs.push(g);
          tokens.set(g, facts);
          bindings.set(g, bound);
        }
      }
      return {
        module: {
          name: decl.name,
          params: this.params,
          components,
          graphs,
          stages,
          policies,
          weights,
          ...(packagePlan ? { package: packagePlan } : {}),
        },
        tokens,
        bindings,
      };
    } catch (e) {
      if (e instanceof DiagnosticError) {
        this.accept(e.diagnostic);
        return { module: undefined, tokens };
      }
      throw e;
    }
  }

  /** Names stay names (checked by resolve); integer entries are evaluated as compile-time values. */
  private packagePlan(m: A.PackageDecl, env: Env, ctx: Ctx): PackagePlan {
    const entries = new Map<string, PackageEntry>();
    for (const e of m.entries) {
      const kind = PACKAGE_KEYS.get(e.key);
      const value =
        kind === "int"
          ? asInt(this.eval(e.value, env, ctx), `package "${e.key}"`, e.value.span)
          : kind === "pinpoints"
            ? pinpoints(this.eval(e.value, env, ctx), e.value.span)
            : e.value.kind === "name"
              ? e.value.name
              : fail("VLM3200", `package "${e.key}" must be a name`, e.value.span);
      entries.set(e.key, { value, span: e.value.span });
    }
    return { span: m.span, entries };
  }

  private entryGraph(
    entry: A.ForwardDecl | A.GraphDecl,
    name: string,
    root: Inst,
    file: string,
    facts: TokenFact[],
    bindings: NameBinding[],
  ): Graph | undefined {
    const graph = new Graph(name);
    const env = new Env(root.env);
    const ctx: Ctx = { graph, scope: "", span: entry.span, file, tokens: facts, bindings };
    try {
      for (const p of entry.params) {
        if (!p.type?.dims) failWith("VLM2300", { input: p.name, entry: name }, p.span);
        if (!isDType(p.type.name))
          fail("VLM2011", `"${p.type.name}" is not a dtype (f32, f16, bf16, i64, i32, bool…)`, p.type.nameSpan);
        const dims = p.type.dims.map((d) => this.inputDim(d, env, ctx, graph));
        env.set(p.name, { k: "tensor", v: graph.addInput(p.name, tensorType(p.type.name as DType, dims), p.span) });
      }
      const flow = this.exec(entry.body, env, ctx);
      if (!flow) failWith("VLM2301", { entry: name }, entry.span);
      const outputs = this.outputs(entry.body, flow.returned, ctx);
      for (const [outName, v] of outputs) graph.setOutput(outName, asTensor(v, `output "${outName}"`, ctx));
      return graph;
    } catch (e) {
      if (e instanceof DiagnosticError) {
        this.accept(e.diagnostic);
        return undefined;
      }
      throw e;
    }
  }

  private inputDim(d: A.Dim, env: Env, ctx: Ctx, graph: Graph): Dim {
    let value: Dim;
    if (
      d.value.kind === "name" &&
      env.get(d.value.name) === undefined &&
      this.top(ctx.file, d.value.name) === undefined
    ) {
      value = sym(d.value.name);
      env.set(d.value.name, int(value));
    } else value = asDim(this.eval(d.value, env, ctx), "dimension", d.span);
    if (d.bound) {
      if (isStatic(value) || d.value.kind !== "name") failWith("VLM2302", {}, d.span);
      const bound = asInt(this.eval(d.bound, env, ctx), "bound", d.bound.span);
      if (bound < 1) failWith("VLM2303", { bound }, d.bound.span);
      graph.bounds.set(d.value.name, bound);
    }
    return value;
  }

  /** Output names: `return name: x` names it; `return x` takes the variable's name. */
  private outputs(body: readonly A.Stmt[], returned: Val, ctx: Ctx): [string, Val][] {
    const ret = findReturn(body);
    const items = returned.k === "tuple" ? returned.items : [returned];
    return items.map((v, i) => {
      const item = ret?.items[i];
      const name =
        item?.name?.name ??
        (item?.value.kind === "name" ? item.value.name : items.length === 1 ? "output" : `output_${i}`);
      if (v.k !== "tensor" && v.k !== "param")
        failWith("VLM2304", { output: name, got: describeVal(v) }, item?.value.span ?? ctx.span);
      return [name, v];
    });
  }

  // ---- names ----

  private top(file: string, name: string): TopSymbol | undefined {
    return this.resolved.scopes.get(file)?.get(name);
  }

  private lookup(name: string, env: Env, ctx: Ctx, span: Span): Val {
    const local = env.get(name);
    if (local) return local;
    const sym = this.top(ctx.file, name);
    if (sym?.kind === "const") return this.constValue(sym);
    if (sym) failWith("VLM2305", { kind: sym.kind, name }, span);
    if (BUILTINS.has(name)) return { k: "fn", name };
    return fail("VLM2001", `"${name}" is not defined`, span);
  }

  private constValue(sym: Extract<TopSymbol, { kind: "const" }>): Val {
    this.evaluateFileConstants(sym.file);
    const cached = this.constCache.get(sym.decl);
    if (cached === "pending") fail("VLM2110", `constant "${sym.decl.name}" depends on itself`, sym.decl.nameSpan);
    if (cached) return cached;
    this.constCache.set(sym.decl, "pending");
    const v = this.eval(sym.decl.value, new Env(), {
      graph: undefined,
      scope: "",
      span: sym.decl.span,
      file: sym.file,
      tokens: undefined,
    });
    this.constCache.set(sym.decl, v);
    return v;
  }

  /** Evaluates a file's constants in declaration order, so chains of constants never recurse deeply. */
  private evaluateFileConstants(file: string): void {
    if (this.constFiles.has(file)) return;
    this.constFiles.add(file);
    for (const decl of this.program.files.get(file)?.ast.decls ?? []) {
      if (decl.kind !== "const" || this.constCache.has(decl)) continue;
      const sym = this.top(file, decl.name);
      if (sym?.kind === "const" && sym.decl === decl) this.constValue(sym);
    }
  }

  // ---- members ----

  /** Walks members, resolving compile-time `if`, calling `visit` for every member that applies. */
  private collect(members: readonly A.Member[], env: Env, ctx: Ctx, visit: (m: A.Member) => void): void {
    for (const m of members) {
      if (m.kind === "if") {
        const cond = asBool(this.eval(m.cond, env, ctx), "an `if` condition", m.cond.span);
        this.collect(cond ? m.then : (m.else ?? []), env, ctx, visit);
      } else visit(m);
    }
  }

  private members(
    members: readonly A.Member[],
    inst: Inst,
    owner: Owner | undefined,
    ctx: Ctx,
    components?: ComponentInfo[],
  ): void {
    const env = inst.env;
    this.collect(members, env, { ...ctx, file: inst.file }, (m) => {
      const mctx: Ctx = { ...ctx, file: inst.file, span: m.span };
      switch (m.kind) {
        case "const":
          env.set(m.name, this.eval(m.value, env, mctx));
          break;
        case "param": {
          const role = m.role ? (m.role.name as Role) : owner?.role;
          const paramOwner: Owner = owner ?? { component: m.role ? m.name : "", role, frozen: m.frozen };
          const shape = m.shape.map((d) => asInt(this.eval(d, env, mctx), "a parameter dimension", d.span));
          if (shape.some((d) => d < 0)) failWith("VLM2306", { param: m.name, shape: shapeToString(shape) }, m.span);
          const init = m.init ? this.initializer(m.init, env, mctx) : ({ kind: "zeros" } as Initializer);
          const p = this.makeParam(
            join(inst.path, m.name),
            shape,
            init,
            { ...paramOwner, frozen: paramOwner.frozen || m.frozen },
            false,
            "f32",
            m.span,
          );
          env.set(m.name, { k: "param", p });
          if (!owner && m.role)
            components?.push({ name: m.name, role, frozen: m.frozen, block: "param", span: m.span });
          break;
        }
        case "component": {
          const role = m.role ? (m.role.name as Role) : undefined;
          const childOwner: Owner = owner ?? { component: m.name, role, frozen: m.frozen };
          const path = join(inst.path, m.name);
          if (m.repeat) {
            const count = asInt(this.eval(m.repeat.count, env, mctx), "a repeat count", m.repeat.count.span);
            if (count < 0 || count > 100_000)
              fail("VLM2108", `repeat(${count}) is out of range (0…100000)`, m.repeat.count.span);
            const items: Inst[] = [];
            for (let i = 0; i < count; i++) {
              const ienv = new Env(env);
              if (m.repeat.index) ienv.set(m.repeat.index.name, int(i));
              items.push(this.instantiate(m.value, ienv, `${path}.${i}`, childOwner, mctx));
            }
            env.set(m.name, { k: "stack", items, path });
          } else env.set(m.name, { k: "module", inst: this.instantiate(m.value, env, path, childOwner, mctx) });
          if (!owner) {
            const callee = m.value.kind === "call" ? m.value.callee : m.value;
            const made = env.get(m.name);
            components?.push({
              name: m.name,
              role,
              frozen: m.frozen,
              block: callee.kind === "name" ? callee.name : "?",
              span: m.span,
              ...(made?.k === "module" ? { config: scalarConfig(made.inst.config) } : {}),
            });
          }
          break;
        }
        default:
          break;
      }
    });
  }

  private initializer(e: A.Expr, env: Env, ctx: Ctx): Initializer {
    const name = e.kind === "call" && e.callee.kind === "name" ? e.callee.name : e.kind === "name" ? e.name : undefined;
    const args =
      e.kind === "call" ? this.bindBuiltin(name ?? "", this.evalArgs(e.args, env, ctx), ctx) : new Map<string, Val>();
    const num = (key: string, fallback: number) => (args.has(key) ? asNumber(args.get(key), key, e.span) : fallback);
    switch (name) {
      case "zeros":
        return { kind: "zeros" };
      case "ones":
        return { kind: "ones" };
      case "full":
        return { kind: "full", value: num("value", 0) };
      case "normal":
        return { kind: "normal", std: num("std", 0.02), mean: num("mean", 0) };
      case "uniform":
        return { kind: "uniform", bound: num("bound", 0.02) };
      default:
        return fail(
          "VLM2005",
          "a parameter initialiser must be zeros, ones, full(v), normal(std) or uniform(bound)",
          e.span,
        );
    }
  }

  private makeParam(
    name: string,
    shape: number[],
    init: Initializer,
    owner: Owner,
    buffer: boolean,
    dtype: DType,
    span: Span,
  ): Param {
    const elements = shape.reduce((a, b) => a * b, 1);
    this.totalElements += elements;
    if (this.totalElements > MAX_PARAMETERS) {
      fail(
        "VLM2108",
        `the model would need more than ${MAX_PARAMETERS.toExponential(0)} parameters (reached at ${name} ${shapeToString(shape)}); refusing to build it`,
        span,
      );
    }
    const p: Param = {
      name,
      type: tensorType(dtype, shape),
      init,
      component: owner.component,
      role: owner.role,
      frozen: owner.frozen,
      buffer,
      span,
    };
    this.params.push(p);
    return p;
  }

  private instantiate(value: A.Expr, env: Env, path: string, owner: Owner, ctx: Ctx): Inst {
    const call = value.kind === "call" ? value : undefined;
    const callee = call ? call.callee : value;
    if (callee.kind !== "name") return fail("VLM2005", "a component must be an instance of a block", value.span);
    const args = this.evalArgs(call?.args ?? [], env, ctx);
    const sym = this.top(ctx.file, callee.name);
    if (this.depth > MAX_CALL_DEPTH)
      fail("VLM2111", `blocks nest more than ${MAX_CALL_DEPTH} deep (is "${callee.name}" recursive?)`, value.span);
    if (sym?.kind === "block") {
      const decl = sym.decl;
      const benv = new Env();
      const config = this.bindParams(
        decl.params,
        args,
        benv,
        { ...ctx, file: sym.file },
        `block "${decl.name}"`,
        value.span,
      );
      const inst: Inst = {
        path,
        blockName: decl.name,
        decl,
        file: sym.file,
        env: benv,
        params: new Map(),
        config,
        span: value.span,
      };
      const site = { span: value.span, message: `in ${path} (${decl.name}) instantiated here` };
      this.depth++;
      this.sites.push(site);
      try {
        this.members(decl.members, inst, owner, { ...ctx, file: sym.file });
      } catch (e) {
        throw withNote(e, site);
      } finally {
        this.sites.pop();
        this.depth--;
      }
      return inst;
    }
    const builtin = BUILTINS.get(callee.name);
    if (builtin?.kind === "module") {
      const params = new Map<string, Param>();
      const bound = this.bindBuiltin(callee.name, args, { ...ctx, span: value.span });
      const config = instantiatePrimitive(
        callee.name,
        bound,
        (local, shape, init, buffer = false, dtype = "f32") => {
          const p = this.makeParam(join(path, local), shape, init, owner, buffer, dtype, value.span);
          params.set(local, p);
          return p;
        },
        value.span,
      );
      return {
        path,
        blockName: callee.name,
        decl: undefined,
        file: ctx.file,
        env: new Env(),
        params,
        config,
        span: value.span,
      };
    }
    return fail("VLM2005", `"${callee.name}" is not a block`, callee.span);
  }

  /** Binds evaluated arguments to declared parameters, evaluating defaults in order into `env`. */
  private bindParams(
    params: readonly A.ParamDef[],
    args: readonly ArgVal[],
    env: Env,
    ctx: Ctx,
    what: string,
    span: Span,
  ): Map<string, Val> {
    const sigs = params.map((p) => ({ name: p.name, required: p.default === undefined }));
    const { bound } = bindOrFail(args, { what, params: sigs }, span);
    const config = new Map<string, Val>();
    for (const p of params) {
      const v = bound.get(p.name) ?? this.eval(p.default!, env, ctx);
      env.set(p.name, v);
      config.set(p.name, v);
    }
    return config;
  }

  private bindBuiltin(name: string, args: readonly ArgVal[], ctx: Ctx): Bound {
    const sig = BUILTINS.get(name);
    if (!sig) return fail("VLM2001", `"${name}" is not defined`, ctx.span);
    const { bound, rest, spans } = bindOrFail(
      args,
      { what: `"${name}"`, params: sig.params, variadic: sig.variadic },
      ctx.span,
    );
    const out: Bound = bound;
    out.rest = rest;
    out.spans = spans;
    return out;
  }

  // ---- statements ----

  private exec(stmts: readonly A.Stmt[], env: Env, ctx: Ctx): Flow {
    for (const s of stmts) {
      const sctx: Ctx = { ...ctx, span: s.span };
      switch (s.kind) {
        case "const":
          env.set(s.name, this.eval(s.value, env, sctx));
          break;
        case "assign": {
          const v = this.eval(s.value, env, sctx);
          // Only the entry point's own names: block bodies run with scopes of their own.
          if (v.k === "tensor" && s.targets.length === 1 && ctx.scope === "")
            ctx.bindings?.push({ name: s.targets[0]!.name, span: s.targets[0]!.span, type: v.v.type });
          if (s.targets.length === 1) env.set(s.targets[0]!.name, v);
          else {
            const items = v.k === "tuple" || v.k === "list" ? v.items : undefined;
            if (!items || items.length !== s.targets.length)
              failWith("VLM2307", { got: describeVal(v), count: s.targets.length }, s.span);
            s.targets.forEach((t, i) => env.set(t.name, items[i]!));
          }
          break;
        }
        case "return": {
          const vals = s.items.map((i) => this.eval(i.value, env, sctx));
          return { returned: vals.length === 1 ? vals[0]! : { k: "tuple", items: vals } };
        }
        case "expect":
          this.expect(s.cond, env, sctx);
          break;
        case "if": {
          const cond = asBool(this.eval(s.cond, env, sctx), "an `if` condition (known at compile time)", s.cond.span);
          this.markOptional(cond ? (s.else ?? []) : s.then, env, ctx);
          const flow = this.exec(cond ? s.then : (s.else ?? []), env, ctx);
          if (flow) return flow;
          break;
        }
        case "for": {
          const it = this.eval(s.iterable, env, sctx);
          const items: Val[] =
            it.k === "stack"
              ? it.items.map((inst) => ({ k: "module", inst }))
              : it.k === "list" || it.k === "tuple"
                ? it.items
                : failWith("VLM2308", { got: describeVal(it) }, s.iterable.span);
          for (const item of items) {
            env.set(s.name.name, item);
            const flow = this.exec(s.body, env, ctx);
            if (flow) return flow;
          }
          break;
        }
      }
    }
    return undefined;
  }

  /** The modules an untaken `if` branch names are left out of this graph by design. */
  private markOptional(branch: readonly A.Stmt[], env: Env, ctx: Ctx): void {
    const graph = ctx.graph;
    if (!graph) return;
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(visit);
      else if (node && typeof node === "object") {
        const n = node as { kind?: string; name?: string };
        if (n.kind === "name" && typeof n.name === "string") {
          const v = env.get(n.name);
          if (v?.k === "module") graph.optional.add(v.inst.path);
          if (v?.k === "stack") graph.optional.add(v.path);
        }
        for (const [key, child] of Object.entries(node)) if (key !== "span" && key !== "nameSpan") visit(child);
      }
    };
    visit(branch);
  }

  private expect(cond: A.Expr, env: Env, ctx: Ctx): void {
    const text = (e: A.Expr) => this.program.files.get(e.span.file)?.source.text.slice(e.span.start, e.span.end) ?? "?";
    const recordTokens = (e: A.Expr) => {
      if (e.kind === "call" && e.callee.kind === "name" && e.callee.name === "tokens") {
        const v = this.eval(e, env, ctx);
        const arg = e.args[0]?.value;
        const measured = arg?.kind === "name" ? env.get(arg.name) : undefined;
        if (v.k === "int" && ctx.tokens)
          ctx.tokens.push({
            label: text(arg ?? e),
            value: v.v,
            span: e.span,
            ...(measured?.k === "tensor" ? { tensor: measured.v } : {}),
          });
      }
      if (e.kind === "binary") {
        recordTokens(e.left);
        recordTokens(e.right);
      }
    };
    recordTokens(cond);
    const bounds = ctx.graph?.bounds ?? new Map<string, number>();
    if (cond.kind === "binary" && ["==", "!=", "<", "<=", ">", ">="].includes(cond.op)) {
      const l = this.eval(cond.left, env, ctx);
      const r = this.eval(cond.right, env, ctx);
      if (l.k === "int" && r.k === "int") {
        // Proved means: holds for every allowed value of the symbols (1 ≤ S ≤ bound).
        const verdict = compareDims(cond.op, l.v, r.v, bounds);
        const shown = `${dimToString(l.v)} ${cond.op} ${dimToString(r.v)}`;
        const boundNote = symbolNote(l.v, r.v, bounds);
        if (verdict === true) {
          if (symbolsIn(l.v).length + symbolsIn(r.v).length > 0)
            ctx.tokens?.push({ label: text(cond), value: l.v, span: cond.span, proved: `${shown}${boundNote}` });
          return;
        }
        const allBounded = [...symbolsIn(l.v), ...symbolsIn(r.v)].every((s) => bounds.has(s));
        if (verdict === false || allBounded)
          this.accept(
            diagnostic("VLM3001", `expectation failed: ${text(cond)} — ${shown} does not hold${boundNote}`, cond.span, {
              related: this.callSites(),
            }),
          );
        else
          this.accept(
            diagnostic(
              "VLM3002",
              `cannot prove ${text(cond)} — ${shown}${boundNote}; bound the symbols in the input types (e.g. T <= 3520)`,
              cond.span,
              { related: this.callSites() },
            ),
          );
        return;
      }
    }
    const v = this.eval(cond, env, ctx);
    if (v.k !== "bool") failWith("VLM2309", { got: describeVal(v) }, cond.span);
    if (!v.v)
      this.accept(diagnostic("VLM3001", `expectation failed: ${text(cond)}`, cond.span, { related: this.callSites() }));
  }

  /** Notes leading from an expectation inside a block back to the user's call, innermost first. */
  private callSites(): Related[] {
    return this.sites.slice(-MAX_NOTES).reverse();
  }

  // ---- expressions ----

  eval(e: A.Expr, env: Env, ctx: Ctx): Val {
    const ectx: Ctx = { ...ctx, span: e.span };
    switch (e.kind) {
      case "int":
        return int(e.value);
      case "float":
        return { k: "float", v: e.value };
      case "string":
        return { k: "str", v: e.value };
      case "bool":
        return bool(e.value);
      case "none":
        return NONE;
      case "name":
        return this.lookup(e.name, env, ectx, e.span);
      case "list":
        return { k: "list", items: e.items.map((i) => this.eval(i, env, ctx)) };
      case "unary": {
        const v = this.eval(e.operand, env, ctx);
        if (e.op === "not") {
          if (v.k === "bool") return bool(!v.v);
          const t = asTensor(v, "the operand of not", ectx);
          return { k: "tensor", v: emit1(ectx, "Not", [t], t.type) };
        }
        if (v.k === "int") return int(dimNeg(v.v));
        if (v.k === "float") return { k: "float", v: -v.v };
        const t = asTensor(v, "the operand of -", ectx);
        return { k: "tensor", v: emit1(ectx, "Neg", [t], t.type) };
      }
      case "binary":
        return this.binary(e, env, ectx);
      case "member":
        return this.member(this.eval(e.object, env, ctx), e.name, e.nameSpan);
      case "index":
        return this.index(this.eval(e.object, env, ctx), e.items, env, ectx);
      case "call":
        return this.call(e, env, ectx);
    }
  }

  private binary(e: Extract<A.Expr, { kind: "binary" }>, env: Env, ctx: Ctx): Val {
    const l = this.eval(e.left, env, ctx);
    const r = this.eval(e.right, env, ctx);
    // `x == none` asks whether an optional argument was given, even when x is a tensor.
    if ((e.op === "==" || e.op === "!=") && (l.k === "none" || r.k === "none"))
      return bool((l.k === r.k) === (e.op === "=="));
    if (isTensorLike(l) || isTensorLike(r)) {
      return {
        k: "tensor",
        v: tensorBinary(e.op, asTensor(l, "the left operand", ctx), asTensor(r, "the right operand", ctx), ctx),
      };
    }
    if (e.op === "and" || e.op === "or") {
      const a = asBool(l, `the left operand of ${e.op}`, e.left.span);
      const b = asBool(r, `the right operand of ${e.op}`, e.right.span);
      return bool(e.op === "and" ? a && b : a || b);
    }
    if (l.k === "int" && r.k === "int") return intBinary(e.op, l.v, r.v, ctx);
    if ((l.k === "int" || l.k === "float") && (r.k === "int" || r.k === "float")) {
      const a = asNumber(l, "operand", e.left.span);
      const b = asNumber(r, "operand", e.right.span);
      const result = numBinary(e.op, a, b, ctx);
      const inexact = INEXACT_DIVISIONS.get(l) ?? INEXACT_DIVISIONS.get(r);
      if (inexact) INEXACT_DIVISIONS.set(result, inexact);
      return result;
    }
    if (e.op === "==" || e.op === "!=") {
      const same = JSON.stringify(plain(l)) === JSON.stringify(plain(r));
      return bool(e.op === "==" ? same : !same);
    }
    if (e.op === "+" && l.k === "str" && r.k === "str") return { k: "str", v: l.v + r.v };
    if (e.op === "+" && l.k === "list" && r.k === "list") return { k: "list", items: [...l.items, ...r.items] };
    return failWith("VLM2310", { op: e.op, left: describeVal(l), right: describeVal(r) }, e.span);
  }

  private member(obj: Val, name: string, span: Span): Val {
    if (obj.k === "module") {
      const inst = obj.inst;
      const own = inst.decl ? inst.env.own(name) : undefined;
      if (own) return own;
      const p = inst.params.get(name);
      if (p) return { k: "param", p };
      const c = inst.config.get(name);
      if (c) return c;
      return fail("VLM2001", `${inst.blockName} "${inst.path}" has no member or parameter "${name}"`, span);
    }
    if ((obj.k === "tensor" || obj.k === "param") && name === "shape") {
      const t = obj.k === "tensor" ? obj.v.type : obj.p.type;
      return { k: "list", items: t.shape.map((d) => int(d)) };
    }
    if (obj.k === "stack" && name === "length") return int(obj.items.length);
    return failWith("VLM2311", { got: describeVal(obj), name }, span);
  }

  private index(obj: Val, items: readonly A.IndexItem[], env: Env, ctx: Ctx): Val {
    // Picking elements of a stack is a choice: the ones not picked are left out by design.
    if (obj.k === "stack") ctx.graph?.optional.add(obj.path);
    if (obj.k === "list" || obj.k === "tuple" || obj.k === "stack") {
      const seq: Val[] = obj.k === "stack" ? obj.items.map((inst) => ({ k: "module", inst })) : obj.items;
      if (items.length !== 1) fail("VLM2107", `a ${obj.k} takes one index`, ctx.span);
      const item = items[0]!;
      if (item.kind === "at") {
        const i = asInt(this.eval(item.index, env, ctx), "an index", item.span);
        const at = i < 0 ? i + seq.length : i;
        if (at < 0 || at >= seq.length)
          fail("VLM2105", `index ${i} is out of range for ${seq.length} items`, item.span);
        return seq[at]!;
      }
      const [start, stop, step] = this.sliceBounds(item, seq.length, env, ctx);
      const out: Val[] = [];
      for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(seq[i]!);
      return obj.k === "stack"
        ? { k: "stack", items: out.map((v) => (v as { inst: Inst }).inst), path: obj.path }
        : { k: obj.k, items: out };
    }
    const x = asTensor(obj, "the indexed value", ctx);
    const shape = x.type.shape;
    if (items.length > shape.length)
      fail("VLM2105", `${items.length} indices for a tensor of rank ${shape.length} ${shapeToString(shape)}`, ctx.span);
    const starts: number[] = [];
    const ends: number[] = [];
    const axes: number[] = [];
    const steps: number[] = [];
    const squeeze: number[] = [];
    const outShape: Dim[] = [];
    items.forEach((item, axis) => {
      const d = shape[axis]!;
      if (item.kind === "at") {
        const i = asInt(this.eval(item.index, env, ctx), "an index", item.span);
        if (isStatic(d) && (i >= d || i < -d))
          fail(
            "VLM2105",
            `index ${i} is out of range for axis ${axis} of size ${d} in ${shapeToString(shape)}`,
            item.span,
          );
        if (!isStatic(d) && i < 0)
          fail("VLM2105", `a negative index on the symbolic axis ${dimToString(d)} is not supported`, item.span);
        const at = isStatic(d) && i < 0 ? i + d : i;
        starts.push(at);
        ends.push(at + 1);
        axes.push(axis);
        steps.push(1);
        squeeze.push(axis);
        return;
      }
      if (!item.start && !item.stop && !item.step) {
        outShape.push(d);
        return;
      }
      if (!isStatic(d)) {
        // On a symbolic axis: x[k:] keeps d − k; x[a:b] with known a ≤ b takes b − a (the input must be that long).
        const start = item.start ? asInt(this.eval(item.start, env, ctx), "a slice start", item.span) : 0;
        const stop = item.stop ? asInt(this.eval(item.stop, env, ctx), "a slice stop", item.span) : undefined;
        if (item.step || start < 0 || (stop !== undefined && (stop < 0 || stop <= start))) {
          fail(
            "VLM2105",
            `on the symbolic axis ${dimToString(d)} only x[k:] and x[a:b] with 0 ≤ a < b are supported`,
            item.span,
          );
        }
        starts.push(start);
        ends.push(stop ?? Number.MAX_SAFE_INTEGER);
        axes.push(axis);
        steps.push(1);
        outShape.push(stop === undefined ? dimSub(d, start) : stop - start);
        return;
      }
      const [start, stop, step] = this.sliceBounds(item, d, env, ctx, axis);
      const count =
        step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
      if (count === 0)
        fail("VLM2105", `slice selects nothing on axis ${axis} of size ${d} in ${shapeToString(shape)}`, item.span);
      starts.push(start);
      ends.push(step < 0 && stop < 0 ? -Number.MAX_SAFE_INTEGER : stop);
      axes.push(axis);
      steps.push(step);
      outShape.push(count);
    });
    for (let a = items.length; a < shape.length; a++) outShape.push(shape[a]!);
    if (axes.length === 0) return { k: "tensor", v: x };
    const sliceShape = shape.map((d, a) => {
      const at = axes.indexOf(a);
      if (at < 0) return d;
      return squeeze.includes(a) ? 1 : outShape[a - squeeze.filter((s) => s < a).length]!;
    });
    let v = emit1(ctx, "Slice", [x], tensorType(x.type.dtype, sliceShape), { starts, ends, axes, steps });
    if (squeeze.length > 0) v = emit1(ctx, "Squeeze", [v], tensorType(x.type.dtype, outShape), { axes: squeeze });
    return { k: "tensor", v };
  }

  /** Python slice semantics on a known length, with out-of-range starts and stops diagnosed. */
  private sliceBounds(
    item: Extract<A.IndexItem, { kind: "slice" }>,
    n: number,
    env: Env,
    ctx: Ctx,
    axis = 0,
  ): [number, number, number] {
    const get = (e: A.Expr | undefined) => (e ? asInt(this.eval(e, env, ctx), "a slice bound", e.span) : undefined);
    const step = get(item.step) ?? 1;
    if (step === 0) fail("VLM2105", "slice step cannot be zero", item.span);
    const norm = (v: number | undefined, fallback: number) => {
      if (v === undefined) return fallback;
      if (v > n || v < -n) fail("VLM2105", `slice bound ${v} is out of range for axis ${axis} of size ${n}`, item.span);
      return v < 0 ? v + n : v;
    };
    const start = norm(get(item.start), step > 0 ? 0 : n - 1);
    const stop = norm(get(item.stop), step > 0 ? n : -1);
    return [start, stop, step];
  }

  private call(e: Extract<A.Expr, { kind: "call" }>, env: Env, ctx: Ctx): Val {
    const callee = this.eval(e.callee, env, ctx);
    const args: ArgVal[] = this.evalArgs(e.args, env, ctx);
    return this.apply(callee, args, ctx, e.callee.span);
  }

  private evalArgs(args: readonly A.Arg[], env: Env, ctx: Ctx): ArgVal[] {
    return args.map((a) => ({ name: a.name, nameSpan: a.nameSpan, value: this.eval(a.value, env, ctx), span: a.span }));
  }

  private apply(callee: Val, args: readonly ArgVal[], ctx: Ctx, span: Span): Val {
    if (callee.k === "fn") {
      const sig = BUILTINS.get(callee.name);
      if (sig?.kind === "module")
        fail("VLM2010", `"${callee.name}" owns parameters: declare it as a sub-module first`, span);
      if (sig?.kind !== "function") fail("VLM2010", `"${callee.name}" is not a function`, span);
      const bound = this.bindBuiltin(callee.name, args, ctx);
      if (callee.name === "attention") return attention(bound, ctx);
      const impl = FUNCTIONS[callee.name];
      if (!impl) throw new InternalError(`builtin "${callee.name}" has a signature but no implementation`);
      return impl(bound, ctx);
    }
    if (callee.k === "module") return this.callInst(callee.inst, args, ctx);
    if (callee.k === "stack") {
      if (callee.items.length === 0) failWith("VLM2312", {}, span);
      let x = args;
      let out: Val = NONE;
      for (const inst of callee.items) {
        out = this.callInst(inst, x, ctx);
        x = [{ value: out, span }, ...args.filter((a) => a.name !== undefined)];
      }
      return out;
    }
    return fail("VLM2010", `${describeVal(callee)} is not callable`, span);
  }

  private callInst(inst: Inst, args: readonly ArgVal[], ctx: Ctx): Val {
    const scope = "/" + inst.path.replace(/\./g, "/");
    if (!inst.decl) {
      const forward = BUILTINS.get(inst.blockName)?.forward ?? [];
      const { bound } = bindOrFail(args, { what: `"${inst.path}" (${inst.blockName})`, params: forward }, ctx.span);
      return callPrimitive(inst.blockName, inst.config, inst.params, bound.get(forward[0]!.name), { ...ctx, scope });
    }
    const forward = inst.decl.members.find((m): m is A.ForwardDecl => m.kind === "forward");
    if (!forward) return fail("VLM2010", `block "${inst.blockName}" has no forward, so it cannot be called`, ctx.span);
    if (++this.depth > MAX_CALL_DEPTH)
      fail("VLM2111", `calls nest more than ${MAX_CALL_DEPTH} deep (is "${inst.blockName}" recursive?)`, ctx.span);
    const site = { span: ctx.span, message: `in ${inst.path || inst.blockName} (${inst.blockName}) called here` };
    this.sites.push(site);
    try {
      const fenv = new Env(inst.env);
      const fctx: Ctx = { ...ctx, scope, file: inst.file };
      this.bindParams(forward.params, args, fenv, fctx, `"${inst.path}"`, ctx.span);
      const flow = this.exec(forward.body, fenv, fctx);
      return flow ? flow.returned : NONE;
    } catch (e) {
      throw withNote(e, site);
    } finally {
      this.sites.pop();
      this.depth--;
    }
  }
}

type ArgVal = CallArg<Val>;

/** Elaboration stops at the first fault the binder finds (the checker has reported them all). */
function bindOrFail(args: readonly ArgVal[], callee: Callee, span: Span): Binding<Val> {
  const binding = bindArguments(args, callee, span);
  if (binding.errors.length > 0) throw new DiagnosticError(binding.errors[0]!);
  return binding;
}

/** Errors inside a block point at the failing line; notes lead back to the user's text (innermost first, capped). */
function withNote(e: unknown, site: Related): unknown {
  if (!(e instanceof DiagnosticError) || (e.diagnostic.related?.length ?? 0) >= MAX_NOTES) return e;
  const d = e.diagnostic;
  return new DiagnosticError({ ...d, related: [...(d.related ?? []), site] });
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

function isTensorLike(v: Val): boolean {
  return v.k === "tensor" || v.k === "param";
}

function plain(v: Val): unknown {
  switch (v.k) {
    case "int":
      return isStatic(v.v) ? v.v : dimToString(v.v);
    case "list":
    case "tuple":
      return v.items.map(plain);
    case "tensor":
    case "module":
    case "stack":
    case "param":
      return { identity: Math.random() };
    case "none":
      return null;
    case "fn":
      return `fn:${v.name}`;
    default:
      return v.v;
  }
}

function intBinary(op: string, a: Dim, b: Dim, ctx: Ctx): Val {
  switch (op) {
    case "+":
      return int(dimAdd(a, b));
    case "-":
      return int(dimSub(a, b));
    case "*":
      return int(dimMul(a, b));
    case "/": {
      if (b === 0) fail("VLM2110", "division by zero", ctx.span);
      const q = dimDiv(a, b);
      if (q !== undefined) return int(q);
      if (isStatic(a) && isStatic(b)) {
        const quotient: Val = { k: "float", v: a / b };
        INEXACT_DIVISIONS.set(quotient, { a, b });
        return quotient;
      }
      return fail("VLM2104", `${dimToString(a)} is not divisible by ${dimToString(b)}`, ctx.span);
    }
    case "%":
    case "**":
      if (!isStatic(a) || !isStatic(b))
        return failWith("VLM2314", { op, left: dimToString(a), right: dimToString(b) }, ctx.span);
      if (op === "%" && b === 0) fail("VLM2110", "modulo by zero", ctx.span);
      return int(op === "%" ? ((a % b) + b) % b : a ** b);
    default: {
      const verdict = compareDims(op, a, b, ctx.graph?.bounds ?? new Map<string, number>());
      if (verdict === undefined)
        fail("VLM3002", `cannot decide ${dimToString(a)} ${op} ${dimToString(b)} at compile time`, ctx.span);
      return bool(verdict);
    }
  }
}

function numBinary(op: string, a: number, b: number, ctx: Ctx): Val {
  switch (op) {
    case "+":
      return { k: "float", v: a + b };
    case "-":
      return { k: "float", v: a - b };
    case "*":
      return { k: "float", v: a * b };
    case "/":
      if (b === 0) fail("VLM2110", "division by zero", ctx.span);
      return { k: "float", v: a / b };
    case "**":
      return { k: "float", v: a ** b };
    case "%":
      return { k: "float", v: a % b };
    case "==":
      return bool(a === b);
    case "!=":
      return bool(a !== b);
    case "<":
      return bool(a < b);
    case "<=":
      return bool(a <= b);
    case ">":
      return bool(a > b);
    case ">=":
      return bool(a >= b);
    default:
      return failWith("VLM2310", { op, left: "numbers", right: "numbers" }, ctx.span);
  }
}

/** Decides a comparison of (possibly symbolic) integers using symbol bounds; undefined if it cannot. */
export function compareDims(op: string, a: Dim, b: Dim, bounds: ReadonlyMap<string, number>): boolean | undefined {
  const diff = dimSub(a, b); // decide diff OP 0
  const hi = dimMax(diff, bounds);
  const lo = dimMin(diff, bounds);
  switch (op) {
    case "==":
      return diff === 0 ? true : hi !== undefined && hi < 0 ? false : lo !== undefined && lo > 0 ? false : undefined;
    case "!=": {
      const eq = compareDims("==", a, b, bounds);
      return eq === undefined ? undefined : !eq;
    }
    case "<=":
      return hi !== undefined && hi <= 0 ? true : lo !== undefined && lo > 0 ? false : undefined;
    case "<":
      return hi !== undefined && hi < 0 ? true : lo !== undefined && lo >= 0 ? false : undefined;
    case ">=":
      return compareDims("<=", b, a, bounds);
    case ">":
      return compareDims("<", b, a, bounds);
    default:
      return undefined;
  }
}

function symbolNote(a: Dim, b: Dim, bounds: ReadonlyMap<string, number>): string {
  const syms = [...new Set([...symbolsIn(a), ...symbolsIn(b)])];
  if (syms.length === 0) return "";
  const parts = syms.map((s) => (bounds.has(s) ? `${s} ≤ ${bounds.get(s)}` : `${s} unbounded`));
  const hiA = dimMax(a, bounds);
  const hiB = dimMax(b, bounds);
  return ` (${parts.join(", ")}${hiA !== undefined && hiB !== undefined ? `; at the bounds: ${hiA} vs ${hiB}` : ""})`;
}

function symbolsIn(d: Dim): string[] {
  return isStatic(d) ? [] : [...d.keys()].flatMap((k) => k.split("*")).filter((s) => s !== "");
}

function findReturn(body: readonly A.Stmt[]): Extract<A.Stmt, { kind: "return" }> | undefined {
  for (let i = body.length - 1; i >= 0; i--) {
    const s = body[i]!;
    if (s.kind === "return") return s;
    if (s.kind === "if") return findReturn(s.then) ?? findReturn(s.else ?? []);
  }
  return undefined;
}

function policyRule(m: A.PolicyDecl): PolicyRule {
  const rule: { selector: string; quantize?: PolicyRule["quantize"]; precision?: PolicyRule["precision"] } = {
    selector: m.selector.name,
  };
  for (const e of m.entries) {
    const v = A.entryWord(e.value) ?? "";
    if (e.key === "quantize") rule.quantize = v as PolicyRule["quantize"];
    if (e.key === "precision") rule.precision = v as PolicyRule["precision"];
  }
  return rule;
}

/** A `weights` declaration as the IR states it: `prefix "P"` is the key rule `"P": ""`. */
function weightsDeclaration(m: A.WeightsDecl): IrModule["weights"][number] {
  const rules: KeyRule[] = [
    ...(m.prefix !== undefined ? [{ kind: "rename" as const, from: m.prefix, to: "" }] : []),
    ...(m.map ?? []).map(
      (r): KeyRule =>
        r.kind === "tie"
          ? { kind: "tie", param: r.param, source: r.source }
          : { kind: "rename", from: r.from, to: r.to },
    ),
  ];
  return { target: m.target?.name, path: m.path, rules, span: m.span };
}

/** The numbers, flags and words of a block's bound arguments (checked against checkpoint configs; read back by the package writer). */
function scalarConfig(config: ReadonlyMap<string, Val>): Record<string, number | boolean | string> {
  const out: Record<string, number | boolean | string> = {};
  for (const [key, v] of config) {
    if (v.k === "int" && typeof v.v === "number") out[key] = v.v;
    else if (v.k === "float" || v.k === "bool" || v.k === "str") out[key] = v.v;
  }
  return out;
}

/** A package's `pinpoints: [[h, w], …]`: positive integer [height, width] pairs, at least one. */
function pinpoints(v: Val, span: Span): [number, number][] {
  const pairs = v.k === "list" || v.k === "tuple" ? v.items : [];
  const out = pairs.map((p) =>
    (p.k === "list" || p.k === "tuple") && p.items.length === 2
      ? (p.items.map((d) => asInt(d, "a pinpoint size", span)) as [number, number])
      : undefined,
  );
  if (out.length === 0 || out.some((p) => p === undefined || p.some((d) => d <= 0)))
    fail("VLM3200", 'package "pinpoints" must be a list of [height, width] pairs of positive sizes', span);
  return out as [number, number][];
}
