import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mulawToPcm16 } from '../media/audio/mulaw.js';
import { encodeWav, mulawToWav, parseWav, readCallerAudio } from './wav.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/audio');
const hello = new Uint8Array(readFileSync(join(FIXTURES, 'hello.ulaw')));

/** A WAV with any header fields, for formats encodeWav does not write. */
function wavFile(fmt: { tag: number; channels: number; rate: number; bits: number }, data: Uint8Array): Buffer {
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVEfmt ', 8, 'latin1');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(fmt.tag, 20);
  head.writeUInt16LE(fmt.channels, 22);
  head.writeUInt32LE(fmt.rate, 24);
  head.writeUInt32LE((fmt.rate * fmt.channels * fmt.bits) / 8, 28);
  head.writeUInt16LE((fmt.channels * fmt.bits) / 8, 32);
  head.writeUInt16LE(fmt.bits, 34);
  head.write('data', 36, 'latin1');
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

const sine = (rate: number, hz: number, seconds: number, amplitude = 8000) =>
  Int16Array.from({ length: rate * seconds }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate)));

const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((s, x) => s + x * x, 0) / pcm.length);

/** Upward zero crossings per second: the frequency of a clean tone. */
const frequency = (pcm: Int16Array, rate: number) => {
  let crossings = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1]! < 0 && pcm[i]! >= 0) crossings++;
  return (crossings * rate) / pcm.length;
};

describe('simulator audio files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vocelio-wav-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, bytes: Uint8Array) => {
    writeFileSync(join(dir, name), bytes);
    return join(dir, name);
  };

  it('round-trips mu-law through the recorded WAV (8 kHz PCM16) unchanged', async () => {
    const wav = mulawToWav(hello);
    expect(parseWav(wav)).toMatchObject({ format: 'pcm', sampleRate: 8000, channels: 1, bitsPerSample: 16 });
    const back = await readCallerAudio(file('hello.wav', wav));
    // -0 (0x7F) is the one code that decodes to 0 and comes back as +0 (0xFF).
    expect(Buffer.from(back.mulaw)).toEqual(Buffer.from(hello.map((c) => (c === 0x7f ? 0xff : c))));
    expect(back.durationMs).toBeCloseTo(hello.length / 8, 5);
  });

  it('takes a mu-law WAV (format 7, 8 kHz) byte for byte', async () => {
    const audio = await readCallerAudio(file('mulaw.wav', wavFile({ tag: 7, channels: 1, rate: 8000, bits: 8 }, hello)));
    expect(Buffer.from(audio.mulaw)).toEqual(Buffer.from(hello));
    expect(audio.source).toBe('WAV mu-law 8000 Hz mono');
  });

  it('resamples a 16 kHz WAV to 8 kHz, keeping pitch, level and length', async () => {
    const tone = sine(16_000, 440, 1);
    const audio = await readCallerAudio(file('tone16k.wav', encodeWav(tone, 16_000)));
    const pcm = mulawToPcm16(audio.mulaw);
    expect(audio.mulaw.length).toBe(8000);
    expect(frequency(pcm.subarray(400, 7600), 8000)).toBeCloseTo(440, -1);
    expect(rms(pcm.subarray(400, 7600)) / rms(tone)).toBeCloseTo(1, 1);
  });

  it('downmixes stereo to mono by averaging the channels', async () => {
    const tone = sine(8000, 300, 0.5);
    const stereo = new Int16Array(tone.length * 2);
    tone.forEach((s, i) => {
      stereo[2 * i] = s;
      stereo[2 * i + 1] = 0;
    });
    const bytes = new Uint8Array(stereo.buffer);
    const audio = await readCallerAudio(file('stereo.wav', wavFile({ tag: 1, channels: 2, rate: 8000, bits: 16 }, bytes)));
    expect(rms(mulawToPcm16(audio.mulaw)) / rms(tone)).toBeCloseTo(0.5, 1);
    expect(audio.source).toBe('WAV PCM16 8000 Hz stereo');
  });

  it('reads 24-bit and float WAVs like 16-bit ones', async () => {
    const tone = sine(8000, 500, 0.2);
    const pcm24 = new Uint8Array(tone.length * 3);
    const f32 = new Float32Array(tone.length);
    tone.forEach((s, i) => {
      const v = s * 256;
      pcm24[3 * i] = v & 0xff;
      pcm24[3 * i + 1] = (v >> 8) & 0xff;
      pcm24[3 * i + 2] = (v >> 16) & 0xff;
      f32[i] = s / 32767;
    });
    const expected = Buffer.from((await readCallerAudio(file('16.wav', encodeWav(tone, 8000)))).mulaw);
    const a = await readCallerAudio(file('24.wav', wavFile({ tag: 1, channels: 1, rate: 8000, bits: 24 }, pcm24)));
    const b = await readCallerAudio(file('f32.wav', wavFile({ tag: 3, channels: 1, rate: 8000, bits: 32 }, new Uint8Array(f32.buffer))));
    expect(Buffer.from(a.mulaw)).toEqual(expected);
    expect(Buffer.from(b.mulaw)).toEqual(expected);
  });

  it('reads a streamed WAV whose data size was never filled in to the end of the file', async () => {
    const wav = mulawToWav(hello.subarray(0, 800));
    wav.writeUInt32LE(0xffffffff, 40);
    expect((await readCallerAudio(file('streamed.wav', wav))).mulaw.length).toBe(800);
  });

  it('takes headerless .ulaw and .raw files as 8 kHz mu-law', async () => {
    const audio = await readCallerAudio(join(FIXTURES, 'hello.ulaw'));
    expect(audio).toMatchObject({ source: 'raw 8 kHz mu-law', durationMs: hello.length / 8 });
    expect((await readCallerAudio(file('hello.raw', hello))).mulaw).toEqual(hello);
  });

  it('rejects a file that is not a WAV, saying what headerless audio must be', async () => {
    await expect(readCallerAudio(file('notes.wav', new TextEncoder().encode('just some text, not audio')))).rejects.toThrow(
      /notes\.wav: not a WAV file \(no RIFF\/WAVE header\); headerless audio must be 8 kHz mu-law named \.ulaw or \.raw/,
    );
  });

  it('rejects an unsupported WAV encoding by name', async () => {
    await expect(readCallerAudio(file('alaw.wav', wavFile({ tag: 6, channels: 1, rate: 8000, bits: 8 }, hello)))).rejects.toThrow(
      /alaw\.wav: unsupported WAV encoding \(format tag 6, A-law\); use PCM \(8\/16\/24\/32-bit\), 32-bit float or mu-law/,
    );
  });

  it('says plainly when a file does not exist', async () => {
    await expect(readCallerAudio(join(dir, 'missing.wav'))).rejects.toThrow(/missing\.wav: no such file/);
  });
});
