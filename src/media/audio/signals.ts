// Test and benchmark signals and meters: sine generation, RMS / dBFS, SNR and a Goertzel tone meter.
// Not on the hot path; clarity wins over speed here, but nothing allocates per sample either.

/** PCM16 full scale: a float of 1.0 maps to this many LSB. */
export const PCM16_FULL_SCALE = 32768;

/** What {@link sine} generates. */
export interface SineOptions {
  /** Tone frequency in Hz. */
  frequency: number;
  sampleRate: number;
  /** Number of samples. */
  length: number;
  /** Level in dBFS as defined by {@link dbfs}: 0 is a full-scale sine. Default -10. */
  dbfs?: number;
  /** Starting phase in radians. Default 0. */
  phase?: number;
}

/** A PCM16 sine at the given level, rounded to the nearest integer sample. */
export function sine({ frequency, sampleRate, length, dbfs: level = -10, phase = 0 }: SineOptions): Int16Array {
  const out = new Int16Array(length);
  const peak = Math.min(PCM16_FULL_SCALE * 10 ** (level / 20), 32767);
  const w = (2 * Math.PI * frequency) / sampleRate;
  for (let i = 0; i < length; i++) out[i] = Math.round(peak * Math.sin(w * i + phase));
  return out;
}

/** Root mean square of `x[start..end)`, in the units of `x`. */
export function rms(x: ArrayLike<number>, start = 0, end = x.length): number {
  if (end <= start) return 0;
  let sum = 0;
  for (let i = start; i < end; i++) sum += x[i]! * x[i]!;
  return Math.sqrt(sum / (end - start));
}

/**
 * Level of PCM16 `x[start..end)` in dBFS per AES17: RMS relative to a full-scale sine, so a full-scale
 * sine reads 0 dBFS and a full-scale square wave +3 dB. -Infinity for digital silence.
 */
export function dbfs(x: ArrayLike<number>, start = 0, end = x.length): number {
  return 20 * Math.log10((rms(x, start, end) * Math.SQRT2) / PCM16_FULL_SCALE);
}

/** Signal-to-noise ratio in dB of `actual` against `reference` over `[start..end)`, the noise being their difference. */
export function snrDb(reference: ArrayLike<number>, actual: ArrayLike<number>, start = 0, end = Math.min(reference.length, actual.length)): number {
  let signal = 0;
  let noise = 0;
  for (let i = start; i < end; i++) {
    const r = reference[i]!;
    const d = actual[i]! - r;
    signal += r * r;
    noise += d * d;
  }
  return 10 * Math.log10(signal / noise);
}

/** Options of {@link goertzelPower}. */
export interface GoertzelOptions {
  start?: number;
  end?: number;
  /**
   * 'hann' (default) keeps leakage from other tones ~-31 dB at the first sidelobe and falling fast, so a
   * weak tone can be measured next to a strong one; 'rect' is exact for whole numbers of cycles only.
   */
  window?: 'hann' | 'rect';
}

/**
 * Power of the `frequency` component of `x[start..end)` by the Goertzel algorithm, in mean-square units:
 * a sine of peak amplitude A reads A^2 / 2, so `10 * log10(power)` compares directly with {@link rms} in dB.
 */
export function goertzelPower(x: ArrayLike<number>, frequency: number, sampleRate: number, opts: GoertzelOptions = {}): number {
  const start = opts.start ?? 0;
  const end = opts.end ?? x.length;
  const n = end - start;
  if (n <= 0) return 0;
  const hann = (opts.window ?? 'hann') === 'hann';
  const w = (2 * Math.PI * frequency) / sampleRate;
  const coeff = 2 * Math.cos(w);
  const dw = (2 * Math.PI) / n;
  let s1 = 0;
  let s2 = 0;
  let windowSum = 0;
  for (let i = 0; i < n; i++) {
    const win = hann ? 0.5 - 0.5 * Math.cos(dw * (i + 0.5)) : 1;
    windowSum += win;
    const s0 = x[start + i]! * win + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  // |X(w)|^2 of the windowed block; a sine of amplitude A gives |X| = A * sum(window) / 2.
  const magnitude2 = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  const amplitude = (2 * Math.sqrt(Math.max(magnitude2, 0))) / windowSum;
  return (amplitude * amplitude) / 2;
}

/** Level of the `frequency` component of PCM16 `x` in dBFS (a full-scale sine at that frequency reads 0). */
export function toneDbfs(x: ArrayLike<number>, frequency: number, sampleRate: number, opts: GoertzelOptions = {}): number {
  return 10 * Math.log10((2 * goertzelPower(x, frequency, sampleRate, opts)) / (PCM16_FULL_SCALE * PCM16_FULL_SCALE));
}

/** Deterministic uniform white noise in PCM16 with peak `peak` (default 16384), from a 32-bit `seed`. */
export function whiteNoise(length: number, seed = 1, peak = 16384): Int16Array {
  const out = new Int16Array(length);
  // mulberry32: tiny, fast and good enough for test signals; a seed makes failures reproducible.
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = Math.round((2 * u - 1) * peak);
  }
  return out;
}

/** Concatenates PCM16 chunks into one array. */
export function concatPcm16(chunks: readonly Int16Array[]): Int16Array {
  let length = 0;
  for (const c of chunks) length += c.length;
  const out = new Int16Array(length);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
