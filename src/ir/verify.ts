// The IR's invariants, checked after elaboration and after every pass in tests:
// use lists match inputs exactly, every input is defined before use (topological order),
// values have one producer, outputs are defined, types are well-formed, and every op is declared in ops.ts.

import type { Graph, Value } from "./graph.js";
import { isStatic } from "./dims.js";
import { isIrOp } from "./ops.js";

export function verifyGraph(g: Graph): string[] {
  const problems: string[] = [];
  const defined = new Set<Value>(g.inputs);
  const expectedUses = new Map<Value, number>();
  for (const n of g.nodes) {
    if (!isIrOp(n.op)) problems.push(`${n.op}#${n.id} is not an op of the IR (ir/ops.ts)`);
    n.inputs.forEach((v, i) => {
      if (!v) return;
      expectedUses.set(v, (expectedUses.get(v) ?? 0) + 1);
      if (v.source.kind === "param") defined.add(v);
      if (!defined.has(v)) problems.push(`${n.op}#${n.id} input ${i} is used before it is defined`);
      if (!v.uses.some((u) => u.node === n && u.index === i))
        problems.push(`${n.op}#${n.id} input ${i} is missing from its value's use list`);
    });
    n.outputs.forEach((o, i) => {
      if (o.source.kind !== "node" || o.source.node !== n || o.source.index !== i)
        problems.push(`${n.op}#${n.id} output ${i} does not name its producer`);
      if (defined.has(o)) problems.push(`${n.op}#${n.id} output ${i} is defined twice`);
      defined.add(o);
      for (const d of o.type.shape)
        if (isStatic(d) && (d < 0 || !Number.isInteger(d)))
          problems.push(`${n.op}#${n.id} output ${i} has dimension ${d}`);
    });
  }
  for (const [v, count] of expectedUses) {
    if (v.uses.length !== count)
      problems.push(`value #${v.id} has ${v.uses.length} recorded uses but ${count} real ones`);
    for (const u of v.uses)
      if (u.node.inputs[u.index] !== v || !g.nodes.includes(u.node)) problems.push(`value #${v.id} lists a stale use`);
  }
  for (const o of g.outputs)
    if (!defined.has(o.value) && o.value.source.kind !== "param") problems.push(`output ${o.name} is not defined`);
  return problems;
}
