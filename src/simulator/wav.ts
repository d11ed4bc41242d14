// Audio files for the simulator: what a caller says comes from WAV files (any rate, mono or stereo) or
// headerless 8 kHz mu-law, and always leaves as 8 kHz mu-law, the only format a Twilio stream carries. The
// agent's side is written back as a WAV that every player opens.

import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { decodeMulawSample, mulawToPcm16, pcm16ToMulaw } from '../media/audio/mulaw.js';
import { Resampler } from '../media/audio/resampler.js';

/** A file the simulator cannot use, with what to do about it. */
export class AudioFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AudioFileError';
  }
}

/** The rate of every Twilio media frame. */
export const TELEPHONE_RATE = 8000;

// WAVE format tags (mmreg.h).
const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_MULAW = 7;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Extensions read as raw 8 kHz mu-law (no header to say otherwise). */
const RAW_MULAW_EXTENSIONS = new Set(['.ulaw', '.raw', '.mulaw', '.ul', '.mu']);

/** What a WAV file's `fmt ` and `data` chunks hold. */
export interface WavInfo {
  format: 'pcm' | 'float' | 'mulaw';
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** The sample bytes, interleaved. */
  data: Uint8Array;
}

/** Caller audio ready for a stream, and where it came from. */
export interface CallerAudio {
  /** 8 kHz mu-law. */
  mulaw: Uint8Array;
  durationMs: number;
  /** How the file was read, for messages: "WAV PCM16 16000 Hz stereo", "raw 8 kHz mu-law". */
  source: string;
}

/** Parses a WAV (RIFF/WAVE) file's header; throws AudioFileError when it is not one or is damaged. */
export function parseWav(buf: Uint8Array): WavInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tag = (at: number) => String.fromCharCode(...buf.subarray(at, at + 4));
  if (buf.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new AudioFileError('not a WAV file (no RIFF/WAVE header)');
  let fmt: Omit<WavInfo, 'data'> | null = null;
  let formatTag = 0;
  for (let at = 12; at + 8 <= buf.length; ) {
    const id = tag(at);
    // Streamed WAVs may carry a placeholder size (0 or 0xFFFFFFFF) for `data`; it then runs to the end.
    let size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'data' && (size === 0 || body + size > buf.length)) size = buf.length - body;
    if (id === 'fmt ') {
      if (size < 16 || body + size > buf.length) throw new AudioFileError('damaged WAV file: its fmt chunk is too short');
      formatTag = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const bitsPerSample = view.getUint16(body + 14, true);
      if (formatTag === WAVE_FORMAT_EXTENSIBLE && size >= 40) formatTag = view.getUint16(body + 24, true); // SubFormat GUID's first two bytes
      const format = formatTag === WAVE_FORMAT_PCM ? 'pcm' : formatTag === WAVE_FORMAT_IEEE_FLOAT ? 'float' : formatTag === WAVE_FORMAT_MULAW ? 'mulaw' : null;
      if (!format) throw new AudioFileError(`unsupported WAV encoding (format tag ${formatTag}${formatTag === 6 ? ', A-law' : ''}); use PCM (8/16/24/32-bit), 32-bit float or mu-law`);
      if (channels < 1 || sampleRate < 1) throw new AudioFileError(`damaged WAV file: ${channels} channels at ${sampleRate} Hz`);
      const okBits = format === 'pcm' ? [8, 16, 24, 32] : format === 'float' ? [32] : [8];
      if (!okBits.includes(bitsPerSample)) throw new AudioFileError(`unsupported WAV sample size: ${bitsPerSample}-bit ${format}`);
      fmt = { format, sampleRate, channels, bitsPerSample };
    } else if (id === 'data') {
      if (!fmt) throw new AudioFileError('damaged WAV file: data comes before fmt');
      const frameBytes = (fmt.bitsPerSample / 8) * fmt.channels;
      const usable = size - (size % frameBytes);
      return { ...fmt, data: buf.subarray(body, body + usable) };
    }
    at = body + size + (size % 2); // chunks are word-aligned
  }
  throw new AudioFileError(fmt ? 'damaged WAV file: no data chunk' : 'damaged WAV file: no fmt chunk');
}

/** One channel of PCM16 from any supported WAV encoding, channels averaged. */
function wavToMonoPcm16(wav: WavInfo): Int16Array {
  const { data, channels, bitsPerSample, format } = wav;
  const bytes = bitsPerSample / 8;
  const frames = data.length / (bytes * channels);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sample = (at: number): number => {
    switch (format) {
      case 'mulaw':
        return decodeMulawSample(data[at]!);
      case 'float':
        return Math.max(-1, Math.min(1, view.getFloat32(at, true))) * 32767;
      case 'pcm':
        switch (bitsPerSample) {
          case 8:
            return (data[at]! - 128) << 8; // 8-bit WAV is unsigned
          case 16:
            return view.getInt16(at, true);
          case 24:
            return ((data[at + 2]! << 24) | (data[at + 1]! << 16) | (data[at]! << 8)) >> 16;
          default:
            return view.getInt32(at, true) / 65536;
        }
    }
  };
  const out = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += sample((f * channels + c) * bytes);
    out[f] = Math.round(sum / channels);
  }
  return out;
}

/** Resamples a whole clip of PCM16 to 8 kHz. */
function toTelephoneRate(pcm: Int16Array, rate: number): Int16Array {
  if (rate === TELEPHONE_RATE) return pcm;
  const resampler = new Resampler(rate, TELEPHONE_RATE);
  const body = resampler.process(pcm);
  const tail = resampler.flush();
  const out = new Int16Array(body.length + tail.length);
  out.set(body);
  out.set(tail, body.length);
  return out;
}

/** Converts WAV bytes to 8 kHz mu-law: mu-law 8 kHz mono passes through untouched, anything else is decoded, downmixed and resampled. */
export function wavToMulaw(buf: Uint8Array): CallerAudio {
  const wav = parseWav(buf);
  const source = `WAV ${wav.format === 'pcm' ? `PCM${wav.bitsPerSample}` : wav.format === 'float' ? 'float32' : 'mu-law'} ${wav.sampleRate} Hz ${wav.channels === 1 ? 'mono' : wav.channels === 2 ? 'stereo' : `${wav.channels} channels`}`;
  const mulaw =
    wav.format === 'mulaw' && wav.channels === 1 && wav.sampleRate === TELEPHONE_RATE
      ? wav.data.slice()
      : pcm16ToMulaw(toTelephoneRate(wavToMonoPcm16(wav), wav.sampleRate));
  return { mulaw, durationMs: (mulaw.length / TELEPHONE_RATE) * 1000, source };
}

/**
 * Reads a caller's audio file as 8 kHz mu-law: a WAV (detected by its header, whatever the name), or a
 * headerless `.ulaw`/`.raw` file taken as 8 kHz mu-law.
 */
export async function readCallerAudio(path: string): Promise<CallerAudio> {
  let buf: Uint8Array;
  try {
    buf = new Uint8Array(await readFile(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AudioFileError(code === 'ENOENT' ? `${path}: no such file` : code === 'EISDIR' ? `${path}: is a directory` : `${path}: ${(err as Error).message}`);
  }
  const looksLikeWav = buf.length >= 12 && Buffer.from(buf.subarray(0, 4)).toString('latin1') === 'RIFF';
  const ext = extname(path).toLowerCase();
  if (!looksLikeWav && RAW_MULAW_EXTENSIONS.has(ext)) {
    return { mulaw: buf, durationMs: (buf.length / TELEPHONE_RATE) * 1000, source: 'raw 8 kHz mu-law' };
  }
  try {
    const audio = wavToMulaw(buf);
    if (audio.mulaw.length === 0) throw new AudioFileError('the file holds no audio');
    return audio;
  } catch (err) {
    if (!(err instanceof AudioFileError)) throw err;
    const hint = looksLikeWav ? '' : '; headerless audio must be 8 kHz mu-law named .ulaw or .raw';
    throw new AudioFileError(`${path}: ${err.message}${hint}`);
  }
}

/** A mono PCM16 WAV file (format tag 1), the form every player and editor opens. */
export function encodeWav(pcm: Int16Array, sampleRate: number): Buffer {
  const dataBytes = pcm.length * 2;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(WAVE_FORMAT_PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, 44 + i * 2);
  return out;
}

/**
 * 8 kHz mu-law as an 8 kHz PCM16 WAV. PCM rather than a mu-law WAV (tag 7): some players and browsers do
 * not open tag 7, and decoding loses nothing (every mu-law code is exactly a PCM16 value).
 */
export function mulawToWav(mulaw: Uint8Array): Buffer {
  return encodeWav(mulawToPcm16(mulaw), TELEPHONE_RATE);
}
