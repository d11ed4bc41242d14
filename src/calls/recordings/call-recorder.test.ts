import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CallRecorder, WAV_HEADER_BYTES } from './call-recorder.js';
import { decodeMulawSample, encodeMulawSample, MULAW_SILENCE } from '../../media/audio/mulaw.js';

const FRAME = 160;

interface ParsedWav {
  format: number;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
  riffSize: number;
  dataSize: number;
  left: Int16Array;
  right: Int16Array;
}

/** Reads a canonical PCM WAV back, independently of the writer. */
function parseWav(buf: Buffer): ParsedWav {
  expect(buf.toString('ascii', 0, 4)).toBe('RIFF');
  expect(buf.toString('ascii', 8, 12)).toBe('WAVE');
  expect(buf.toString('ascii', 12, 16)).toBe('fmt ');
  expect(buf.toString('ascii', 36, 40)).toBe('data');
  const dataSize = buf.readUInt32LE(40);
  const frames = dataSize / 4;
  const left = new Int16Array(frames);
  const right = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = buf.readInt16LE(44 + i * 4);
    right[i] = buf.readInt16LE(46 + i * 4);
  }
  return {
    format: buf.readUInt16LE(20),
    channels: buf.readUInt16LE(22),
    sampleRate: buf.readUInt32LE(24),
    byteRate: buf.readUInt32LE(28),
    blockAlign: buf.readUInt16LE(32),
    bitsPerSample: buf.readUInt16LE(34),
    riffSize: buf.readUInt32LE(4),
    dataSize,
    left,
    right,
  };
}

/** A frame whose every byte is one mu-law code. */
const frameOf = (code: number, length = FRAME) => new Uint8Array(length).fill(code);
/** A frame of a ramp of distinct codes, so misplaced samples show. */
const rampFrame = (offset: number) => Uint8Array.from({ length: FRAME }, (_, i) => (offset + i) % 256);
const decoded = (frame: Uint8Array) => Int16Array.from(frame, (c) => decodeMulawSample(c));

describe('CallRecorder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vocelio-rec-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a stereo 8 kHz 16-bit PCM WAV whose header sizes match its audio', async () => {
    const rec = await CallRecorder.start(dir, 'call_header');
    for (let i = 0; i < 75; i++) rec.caller(frameOf(encodeMulawSample(1000)));
    const done = await rec.finish();
    const file = await readFile(done!.path);
    const wav = parseWav(file);
    expect(wav).toMatchObject({ format: 1, channels: 2, sampleRate: 8000, byteRate: 32000, blockAlign: 4, bitsPerSample: 16 });
    expect(wav.dataSize).toBe(75 * FRAME * 4);
    expect(wav.riffSize).toBe(file.length - 8);
    expect(done).toEqual({ path: done!.path, bytes: file.length, durationMs: 1500 });
  });

  it('puts the caller on the left channel and silence on the right when the agent is quiet', async () => {
    const rec = await CallRecorder.start(dir, 'call_caller');
    const frames = [rampFrame(0), rampFrame(7), rampFrame(200)];
    for (const f of frames) rec.caller(f);
    const wav = parseWav(await readFile((await rec.finish())!.path));
    expect(wav.left).toEqual(Int16Array.from(frames.flatMap((f) => [...decoded(f)])));
    expect(wav.right.every((s) => s === 0)).toBe(true);
  });

  it('plays queued agent audio out on the right channel against the caller clock', async () => {
    const rec = await CallRecorder.start(dir, 'call_agent');
    const quiet = frameOf(MULAW_SILENCE);
    for (let i = 0; i < 5; i++) rec.caller(quiet);
    // TTS arrives in a burst of three frames; the caller hears them over the next three 20 ms ticks.
    const burst = [rampFrame(10), rampFrame(50), rampFrame(90)];
    for (const f of burst) rec.agent(f);
    for (let i = 0; i < 5; i++) rec.caller(quiet);
    const wav = parseWav(await readFile((await rec.finish())!.path));
    expect(wav.right.subarray(0, 5 * FRAME).every((s) => s === 0)).toBe(true);
    expect(wav.right.subarray(5 * FRAME, 8 * FRAME)).toEqual(Int16Array.from(burst.flatMap((f) => [...decoded(f)])));
    expect(wav.right.subarray(8 * FRAME).every((s) => s === 0)).toBe(true);
    expect(wav.left.every((s) => s === 0)).toBe(true);
  });

  it('aligns agent audio that arrives in pieces smaller than a frame', async () => {
    const rec = await CallRecorder.start(dir, 'call_pieces');
    const agent = rampFrame(33);
    rec.agent(agent.subarray(0, 100));
    rec.caller(frameOf(MULAW_SILENCE));
    rec.agent(agent.subarray(100));
    rec.caller(frameOf(MULAW_SILENCE));
    const wav = parseWav(await readFile((await rec.finish())!.path));
    const expected = new Int16Array(2 * FRAME);
    expected.set(decoded(agent.subarray(0, 100)), 0);
    expected.set(decoded(agent.subarray(100)), FRAME);
    expect(wav.right).toEqual(expected);
  });

  it('drops queued agent audio on clear: the caller never heard it', async () => {
    const rec = await CallRecorder.start(dir, 'call_clear');
    const said = [rampFrame(1), rampFrame(2), rampFrame(3)];
    for (const f of said) rec.agent(f);
    rec.caller(frameOf(MULAW_SILENCE));
    rec.agentCleared();
    expect(rec.agentQueuedBytes).toBe(0);
    rec.caller(frameOf(MULAW_SILENCE));
    rec.caller(frameOf(MULAW_SILENCE));
    const wav = parseWav(await readFile((await rec.finish())!.path));
    expect(wav.right.subarray(0, FRAME)).toEqual(decoded(said[0]!));
    expect(wav.right.subarray(FRAME).every((s) => s === 0)).toBe(true);
  });

  it('keeps at most about 10 s of unplayed agent audio, dropping the oldest', async () => {
    const rec = await CallRecorder.start(dir, 'call_stuck');
    // 12 s of agent audio with no caller frames (a stalled inbound stream); each frame carries its index.
    for (let i = 0; i < 600; i++) rec.agent(frameOf(i % 200));
    expect(rec.agentQueuedBytes).toBe(80_000);
    rec.caller(frameOf(MULAW_SILENCE));
    const wav = parseWav(await readFile((await rec.finish())!.path));
    // Frames 0..99 (the first 2 s) were dropped; frame 100 is the oldest kept.
    expect(wav.right).toEqual(decoded(frameOf(100)));
  });

  it('leaves out agent audio still queued when the call ends', async () => {
    const rec = await CallRecorder.start(dir, 'call_tail');
    rec.agent(rampFrame(5));
    rec.agent(rampFrame(6));
    rec.caller(frameOf(MULAW_SILENCE));
    const done = await rec.finish();
    expect(done!.durationMs).toBe(20);
    expect(parseWav(await readFile(done!.path)).right).toEqual(decoded(rampFrame(5)));
  });

  it('returns null and leaves no file when the call had no audio', async () => {
    const rec = await CallRecorder.start(dir, 'call_empty');
    rec.agent(rampFrame(1));
    expect(await rec.finish()).toBeNull();
    expect(await readdir(dir)).toEqual([]);
  });

  it('deletes the temp file on abort', async () => {
    const rec = await CallRecorder.start(dir, 'call_abort');
    for (let i = 0; i < 120; i++) rec.caller(rampFrame(i));
    await rec.abort();
    expect(await readdir(dir)).toEqual([]);
    expect(await rec.finish()).toBeNull();
  });

  it('reports, never throws, when the disk falls too far behind, and keeps no partial file', async () => {
    const errors: Error[] = [];
    const rec = await CallRecorder.start(dir, 'call_slow', { onError: (e) => errors.push(e) });
    // 40 s of frames in one tick: no write can complete in between, as with a stalled disk.
    expect(() => {
      for (let i = 0; i < 2000; i++) rec.caller(rampFrame(i));
    }).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/behind/);
    expect(await rec.finish()).toBeNull();
    expect(await readdir(dir)).toEqual([]);
  });

  it('holds no more memory after a 10-minute call than after a second of it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const rec = await CallRecorder.start(dir, 'call_long');
    const callerFrame = rampFrame(3);
    const agentFrame = rampFrame(77);
    const used = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    for (let i = 0; i < 50; i++) rec.caller(callerFrame);
    await rec.drain();
    const before = used();
    const frames = 10 * 60 * 50;
    for (let i = 0; i < frames - 50; i++) {
      // The agent talks every other 5 seconds.
      if (Math.floor(i / 250) % 2 === 1) rec.agent(agentFrame);
      rec.caller(callerFrame);
      if (i % 50 === 49) await rec.drain();
    }
    await rec.drain();
    const growth = used() - before;
    const done = await rec.finish();
    expect(done!.durationMs).toBe(600_000);
    expect((await stat(done!.path)).size).toBe(WAV_HEADER_BYTES + frames * FRAME * 4);
    // The audio is 19.2 MB; the recorder's own buffers are ~100 KB whatever the length.
    expect(growth).toBeLessThan(1_000_000);
  });
});
