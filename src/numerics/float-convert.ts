// Half-precision conversions for weight tensors. Checkpoints arrive as F16/BF16
// and ONNX initializers may be emitted in either, so whole arrays are converted
// bit-exactly (round to nearest, ties to even) rather than through lossy
// double rounding or a dependency on Math.f16round (absent in Node 20).

/** Converts float32 values to IEEE 754 binary16 bit patterns. */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = float32BitsToFloat16Bits(bits[i]!);
  return out;
}

/** Expands binary16 bit patterns to float32 values; the conversion is exact. */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      outBits[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp !== 0) {
      outBits[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    } else {
      // Subnormal or signed zero (-0 * 2^-24 stays -0); exactly representable in float32.
      out[i] = (sign ? -mant : mant) * 2 ** -24;
    }
  }
  return out;
}

/** Converts float32 values to bfloat16 bit patterns (the upper half of a float32). */
export function float32ToBfloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) {
      // Truncating could drop every payload bit and turn NaN into Inf; force a quiet NaN.
      out[i] = (x >>> 16) | 0x0040;
    } else {
      // Adding 0x7fff plus the kept LSB rounds to nearest even; carries into the
      // exponent give the correct overflow to Inf. The sum stays below 2^32.
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** Expands bfloat16 bit patterns to float32 values; the conversion is exact. */
export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) outBits[i] = (src[i]! << 16) >>> 0;
  return out;
}

function float32BitsToFloat16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;

  if (exp === 0xff) {
    // Keep NaN a NaN even when its payload lives only in the dropped low bits.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }

  const halfExp = exp - 112;
  if (halfExp >= 0x1f) return sign | 0x7c00;

  if (halfExp > 0) {
    let h = sign | (halfExp << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent (up to Inf).
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
    return h;
  }

  // Result is subnormal: value = m * 2^-24 with m = full >> shift.
  // Below 2^-25 (shift > 25) everything rounds to zero, including float32 subnormals.
  const shift = 126 - exp;
  if (shift > 25) return sign;
  const full = mant | 0x800000;
  let m = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (m & 1) !== 0)) m++;
  return sign | m;
}
