// A stable textual form of the IR for golden tests and `--emit ir`: values are numbered in
// order of appearance, so the text does not depend on internal ids.

import type { AttrValue, Graph, Value } from "./graph.js";
import { typeToString } from "./types.js";

function attr(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === "string" ? JSON.stringify(x) : String(x))).join(", ")}]`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

export function printGraph(g: Graph): string {
  const names = new Map<Value, string>();
  const name = (v: Value | undefined): string => {
    if (!v) return "_";
    let n = names.get(v);
    if (!n) {
      n =
        v.source.kind === "param"
          ? `@${v.source.param.name}`
          : v.source.kind === "input"
            ? `%${v.source.name}`
            : `%${names.size}`;
      names.set(v, n);
    }
    return n;
  };
  const lines: string[] = [];
  const bounds = [...g.bounds].sort(([a], [b]) => a.localeCompare(b)).map(([s, b]) => `${s} <= ${b}`);
  lines.push(
    `graph ${g.name}(${g.inputs.map((i) => `${name(i)}: ${typeToString(i.type)}`).join(", ")})${bounds.length ? ` where ${bounds.join(", ")}` : ""} {`,
  );
  for (const p of g.usedParams()) lines.push(`  param ${name(g.paramValue(p))}: ${typeToString(p.type)}`);
  for (const n of g.nodes) {
    const attrs = Object.keys(n.attrs)
      .sort()
      .map((k) => `${k}=${attr(n.attrs[k]!)}`);
    const outs = n.outputs.map((o) => `${name(o)}: ${typeToString(o.type)}`).join(", ");
    lines.push(
      `  ${outs} = ${n.op}${attrs.length ? `{${attrs.join(", ")}}` : ""}(${n.inputs.map(name).join(", ")})  // ${n.scope || "/"}`,
    );
  }
  lines.push(`  return ${g.outputs.map((o) => `${o.name}: ${name(o.value)}`).join(", ")}`);
  lines.push("}");
  return lines.join("\n");
}
