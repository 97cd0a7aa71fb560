// Layout: Graphviz's `dot`, compiled to WebAssembly (@hpcc-js/wasm-graphviz), turns DOT into SVG.
// The module loads once per process; laying out a full-size LLaVA picture takes milliseconds.

import { Graphviz } from "@hpcc-js/wasm-graphviz";

let loading: Promise<Graphviz> | undefined;

export async function dotToSvg(dot: string): Promise<string> {
  loading ??= Graphviz.load();
  return (await loading).dot(dot, "svg");
}

/** The `<svg>` element alone, without the XML prolog and doctype, for inlining into HTML. */
export function inlineSvg(svg: string): string {
  const at = svg.indexOf("<svg");
  return at >= 0 ? svg.slice(at) : svg;
}
