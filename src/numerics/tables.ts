// Tables computed at compile time and stored as initializers: rotary position embeddings and T5's
// relative position buckets. Both follow the float32 arithmetic of the Hugging Face reference
// step by step (Math.fround after each operation), so the tables match what PyTorch computes.

const f = Math.fround;

/**
 * cos and "signed sin" tables, [positions, dim], for RoPE in the rotate_half convention of HF
 * LLaMA: emb = cat(freqs, freqs) with freqs[p, i] = p · θ^(−2i/dim). The sin table is negated in
 * its first half so that x·cos + rotate_half(x)·sin = x·cos + cat(x2, x1)·signedSin, which spares
 * a Neg node per use.
 */
export function rotaryTables(theta: number, dim: number, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = dim / 2;
  // inv_freq = 1 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
  const invFreq = Array.from({ length: half }, (_, i) => f(1 / f(theta ** f((2 * i) / dim))));
  const cos = new Float32Array(positions * dim);
  const sin = new Float32Array(positions * dim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = f(invFreq[i]! * p);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * dim + i] = c;
      cos[p * dim + half + i] = c;
      sin[p * dim + i] = -s;
      sin[p * dim + half + i] = s;
    }
  }
  return { cos, sin };
}

/**
 * T5's relative position buckets for query positions 0..qLen-1 and key positions 0..kLen-1, as
 * HF T5Attention._relative_position_bucket(memory_position - context_position): exact buckets
 * for small distances, logarithmic ones up to maxDistance, the last bucket beyond.
 */
export function relativePositionBuckets(
  qLen: number,
  kLen: number,
  buckets: number,
  maxDistance: number,
  bidirectional: boolean,
): number[] {
  const n = bidirectional ? Math.floor(buckets / 2) : buckets;
  const maxExact = Math.floor(n / 2);
  const logRange = f(Math.log(maxDistance / maxExact));
  const out: number[] = [];
  for (let i = 0; i < qLen; i++) {
    for (let j = 0; j < kLen; j++) {
      let rel = j - i;
      let bucket = 0;
      if (bidirectional) {
        if (rel > 0) bucket += n;
        rel = Math.abs(rel);
      } else rel = -Math.min(rel, 0);
      if (rel < maxExact) bucket += rel;
      else {
        const large = maxExact + Math.trunc(f(f(f(Math.log(f(rel / maxExact))) / logRange) * (n - maxExact)));
        bucket += Math.min(large, n - 1);
      }
      out.push(bucket);
    }
  }
  return out;
}
