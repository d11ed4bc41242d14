// ITU-T G.711 mu-law <-> linear PCM16, the codec of every Twilio Media Streams frame.
//
// Conventions (those of the ITU reference code, G.191 `ulaw_compress` / `ulaw_expand`):
// - PCM16 is G.711's 14-bit linear range scaled by 4, so the largest code decodes to +-32124, not 32767.
// - The encoder keeps the top 14 bits (arithmetic shift) and takes the ones' complement of negative
//   samples as their magnitude. That makes the encoder symmetric around -0.5 LSB (-1 encodes like 0)
//   and, because it only looks at `x >> 2`, lets a 16 K-entry table be exact.
// - Zero has two codes: 0xFF (+0) and 0x7F (-0). Both decode to 0; 0 encodes to 0xFF, so 0x7F is the one
//   code that does not survive decode -> encode. 0xFF is also the silence byte Twilio and everyone pads with.

/** Number of distinct mu-law codes. */
const CODES = 256;
/** PCM16 samples share an encoding in groups of 4 (the 2 low bits are below G.711's 14-bit resolution). */
const ENCODE_TABLE_SIZE = 1 << 14;
/** Offset that maps `x >> 2` (-8192..8191) onto a table index (0..16383). */
const ENCODE_TABLE_OFFSET = 1 << 13;
/** G.711's bias in 14-bit units (0x84 in PCM16 units): it makes the segment boundaries powers of two. */
const BIAS = 33;
/** Largest biased 14-bit magnitude; anything louder clips to the top code of its sign. */
const CLIP = 0x1fff;

/** The mu-law code of silence (+0), used to pad frames. */
export const MULAW_SILENCE = 0xff;

/** Largest magnitude a mu-law code decodes to, in PCM16 units. */
export const MULAW_MAX = 32124;

/** Decodes one mu-law code (0..255) to a PCM16 sample by formula; the tables are built from it. */
function decodeByFormula(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  // Reconstruct at the middle of the quantization interval: (2m + 33) << e in 14-bit units, minus the bias.
  const magnitude = ((((mantissa << 1) + BIAS) << exponent) - BIAS) << 2;
  return u & 0x80 ? -magnitude : magnitude;
}

/** Encodes one PCM16 sample (already in range) to mu-law by the G.191 segment algorithm. */
function encodeByFormula(sample: number): number {
  let v = sample >> 2;
  let sign = 0;
  if (v < 0) {
    v = ~v;
    sign = 0x80;
  }
  v += BIAS;
  if (v > CLIP) v = CLIP;
  // v >= 33 has 6..13 significant bits; the segment (exponent) is how many bits above 6 it has.
  const exponent = 26 - Math.clz32(v);
  const mantissa = (v >> (exponent + 1)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

const DECODE_TABLE = new Int16Array(CODES);
for (let code = 0; code < CODES; code++) DECODE_TABLE[code] = decodeByFormula(code);

// A 16 KB table measured 3-8x faster than the segment algorithm (clz32) on Node 20 (benchMulawEncoders in
// audio-bench.ts), and as fast as a 64 KB table indexed by the whole sample while taking a quarter of the cache.
const ENCODE_TABLE = new Uint8Array(ENCODE_TABLE_SIZE);
for (let i = 0; i < ENCODE_TABLE_SIZE; i++) ENCODE_TABLE[i] = encodeByFormula((i - ENCODE_TABLE_OFFSET) << 2);

/** Decodes one mu-law code (its low 8 bits) to a PCM16 sample. */
export function decodeMulawSample(code: number): number {
  return DECODE_TABLE[code & 0xff]!;
}

/** Encodes one PCM16 sample to a mu-law code; values outside -32768..32767 are clipped first. */
export function encodeMulawSample(sample: number): number {
  const s = sample > 32767 ? 32767 : sample < -32768 ? -32768 : sample | 0;
  return ENCODE_TABLE[(s >> 2) + ENCODE_TABLE_OFFSET]!;
}

/** Decodes mu-law bytes to PCM16 into `dst` (allocated when omitted); returns the `src.length` samples written. */
export function mulawToPcm16(src: Uint8Array, dst?: Int16Array): Int16Array {
  const n = src.length;
  const out = dst ?? new Int16Array(n);
  if (out.length < n) throw new RangeError(`mulawToPcm16: dst holds ${out.length} samples, src has ${n}`);
  const table = DECODE_TABLE;
  for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
  return out.length === n ? out : out.subarray(0, n);
}

/** Encodes PCM16 to mu-law bytes into `dst` (allocated when omitted); returns the `src.length` bytes written. */
export function pcm16ToMulaw(src: Int16Array, dst?: Uint8Array): Uint8Array {
  const n = src.length;
  const out = dst ?? new Uint8Array(n);
  if (out.length < n) throw new RangeError(`pcm16ToMulaw: dst holds ${out.length} bytes, src has ${n}`);
  const table = ENCODE_TABLE;
  for (let i = 0; i < n; i++) out[i] = table[(src[i]! >> 2) + ENCODE_TABLE_OFFSET]!;
  return out.length === n ? out : out.subarray(0, n);
}

/** The segment-algorithm encoder the table is built from; exported for tests and the benchmark only. */
export const encodeMulawSampleByFormula = (sample: number): number =>
  encodeByFormula(sample > 32767 ? 32767 : sample < -32768 ? -32768 : sample | 0);
