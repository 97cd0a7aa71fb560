// Dimensions: integers or polynomials over named symbols (B, T, B*N…), with optional upper bounds
// on symbols (`T <= 3520`) used to prove token budgets statically.

/** A polynomial: monomial key (symbol names sorted, joined by "*"; "" for the constant) → coefficient. */
export type Poly = ReadonlyMap<string, number>;
export type Dim = number | Poly;

export function sym(name: string): Poly {
  return new Map([[name, 1]]);
}

export function isStatic(d: Dim): d is number {
  return typeof d === "number";
}

function toPoly(d: Dim): Map<string, number> {
  return typeof d === "number" ? new Map(d === 0 ? [] : [["", d]]) : new Map(d);
}

/** Collapses constant polynomials back to numbers. */
function normalize(p: Map<string, number>): Dim {
  for (const [k, v] of p) if (v === 0) p.delete(k);
  if (p.size === 0) return 0;
  if (p.size === 1 && p.has("")) return p.get("")!;
  return p;
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  const p = toPoly(a);
  for (const [k, v] of toPoly(b)) p.set(k, (p.get(k) ?? 0) + v);
  return normalize(p);
}

export function dimNeg(a: Dim): Dim {
  if (typeof a === "number") return -a;
  return normalize(new Map([...a].map(([k, v]) => [k, -v])));
}

export function dimSub(a: Dim, b: Dim): Dim {
  return dimAdd(a, dimNeg(b));
}

function mulKeys(a: string, b: string): string {
  return [...a.split("*"), ...b.split("*")]
    .filter((s) => s !== "")
    .sort()
    .join("*");
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a * b;
  const out = new Map<string, number>();
  for (const [ka, va] of toPoly(a))
    for (const [kb, vb] of toPoly(b)) {
      const k = mulKeys(ka, kb);
      out.set(k, (out.get(k) ?? 0) + va * vb);
    }
  return normalize(out);
}

/** Exact division, or undefined when the quotient is not a polynomial with integer coefficients. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  if (typeof b === "number") {
    if (b === 0) return undefined;
    if (typeof a === "number") return a % b === 0 ? a / b : undefined;
    const out = new Map<string, number>();
    for (const [k, v] of a) {
      if (v % b !== 0) return undefined;
      out.set(k, v / b);
    }
    return normalize(out);
  }
  // Division by a single monomial (e.g. (B*N*64) / (B*N)).
  if (b.size !== 1) return dimEq(a, b) ? 1 : undefined;
  const [[bk, bv]] = [...b];
  const bSyms = bk.split("*");
  const out = new Map<string, number>();
  for (const [k, v] of toPoly(a)) {
    const syms = k.split("*").filter((s) => s !== "");
    for (const s of bSyms) {
      const at = syms.indexOf(s);
      if (at < 0) return undefined;
      syms.splice(at, 1);
    }
    if (v % bv !== 0) return undefined;
    out.set(syms.sort().join("*"), v / bv);
  }
  return normalize(out);
}

export function dimEq(a: Dim, b: Dim): boolean {
  const d = dimSub(a, b);
  return d === 0;
}

export function dimToString(d: Dim): string {
  if (typeof d === "number") return String(d);
  const terms = [...d].sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b)));
  let out = "";
  for (const [k, v] of terms) {
    const mag = Math.abs(v);
    const body = k === "" ? String(mag) : mag === 1 ? k : `${mag}*${k}`;
    out += out === "" ? (v < 0 ? `-${body}` : body) : v < 0 ? ` - ${body}` : ` + ${body}`;
  }
  return out;
}

export function symbolsOf(d: Dim): string[] {
  if (typeof d === "number") return [];
  return [...new Set([...d.keys()].flatMap((k) => k.split("*")).filter((s) => s !== ""))].sort();
}

/** Upper bound using symbol bounds (symbols are ≥ 1); undefined when a needed symbol is unbounded. */
export function dimMax(d: Dim, bounds: ReadonlyMap<string, number>): number | undefined {
  if (typeof d === "number") return d;
  let total = 0;
  for (const [k, v] of d) {
    const syms = k.split("*").filter((s) => s !== "");
    if (v > 0) {
      let prod = 1;
      for (const s of syms) {
        const b = bounds.get(s);
        if (b === undefined) return undefined;
        prod *= b;
      }
      total += v * prod;
    } else total += v; // every symbol is at least 1
  }
  return total;
}

/** Lower bound (symbols ≥ 1); undefined when a negative term involves an unbounded symbol. */
export function dimMin(d: Dim, bounds: ReadonlyMap<string, number>): number | undefined {
  const neg = dimMax(dimNeg(d), bounds);
  return neg === undefined ? undefined : -neg;
}
