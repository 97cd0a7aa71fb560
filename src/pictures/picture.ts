// What a picture shows, independent of how it is laid out: boxes, nested clusters and labelled
// edges. The driver builds pictures from the elaborated IR and the pass reports; dot.ts, svg.ts
// and html.ts render them. This module knows nothing of the compiler, so it imports nothing.

/** Fill colour family of a box: a component's role, the model's own ops, graph inputs/outputs. */
export type PictureRole = "encoder" | "fusion" | "head" | "glue" | "io" | "param";

/** What a hover shows: the spec line a box comes from, and the shapes that flow in and out. */
export interface PictureInfo {
  readonly title: string;
  /** `file:line: text` of the declaration (or first op) behind the box. */
  readonly spec?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly notes: readonly string[];
}

export interface PictureNode {
  /** Unique in its picture; letters, digits, `_`, `-`, `.`, `:` and `/` only. */
  readonly id: string;
  readonly title: string;
  /** Further label lines under the title (block, parameter count, output shape, fused rule). */
  readonly lines: readonly string[];
  readonly role: PictureRole;
  readonly frozen: boolean;
  /** The cluster drawn around it, if any. */
  readonly cluster?: string;
  /** An op a fusion rule produced, or one a rule matched but refused (a near miss). */
  readonly mark?: "fused" | "near-miss";
  /** The view an interactive page shows when the box is clicked. */
  readonly expands?: string;
  info: PictureInfo;
}

export interface PictureCluster {
  readonly id: string;
  readonly label: string;
  readonly role: PictureRole;
  readonly frozen: boolean;
  readonly parent?: string;
  /** The view an interactive page shows when the cluster's label is clicked (collapse). */
  readonly expands?: string;
  readonly info: PictureInfo;
}

export interface PictureEdge {
  readonly from: string;
  readonly to: string;
  /** The tensor type that flows, `f32[B, 576, 4096]`. */
  readonly label: string;
  /** A token count `expect` proved for this tensor, `576 tokens`. */
  readonly tokens?: string;
}

export interface Picture {
  readonly title: string;
  readonly nodes: readonly PictureNode[];
  readonly clusters: readonly PictureCluster[];
  readonly edges: readonly PictureEdge[];
}

/** `303,507,456` → `303.5M`: short enough for a box; parameters count billions as B, FLOPs as G. */
export function shortCount(n: number, billions: "B" | "G" = "B"): string {
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, billions],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [v, u] of units) if (n >= v) return `${(n / v).toFixed(n >= 10 * v ? 1 : 2)}${u}`;
  return String(n);
}
