// What the simulated caller does, in order: say audio files, pause, press keys, wait for the agent, and
// talk over the agent's reply (barge-in). Written as JSON or as command-line flags in order.

import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { isVoiced } from '../media/audio/speech-level.js';
import { AudioFileError, readCallerAudio, type CallerAudio } from './wav.js';

/** A script that cannot run as written; the message says which step and why. */
export class ScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScriptError';
  }
}

/** One step as written (JSON or flags); file paths are relative to the script's directory. */
export type ScriptStep =
  /** Speak a file. By default the caller then waits until the agent's reply has been played. */
  | { say: string; bargeInAfterMs?: number; waitForReply?: boolean }
  /** Keep the line open (silence) for `pause` ms. */
  | { pause: number }
  /** Press keys, one about every 100 ms. */
  | { dtmf: string }
  /** Wait until the agent's reply (or greeting) has been played. */
  | { waitForReply: true };

/** A say step, ready to stream. */
export interface SayStep {
  kind: 'say';
  file: string;
  /** The file's name, for reports. */
  label: string;
  audio: CallerAudio;
  /** Where the speech is inside the file, or null for silence. */
  speech: SpeechSpan | null;
  /** Start speaking this long after the agent's current reply starts arriving, talking over it. */
  bargeInAfterMs: number | null;
  /** Wait for the agent's reply to be played before the next step. */
  waitForReply: boolean;
}

/** A step ready to run. */
export type Step = SayStep | { kind: 'pause'; ms: number } | { kind: 'dtmf'; digits: string } | { kind: 'wait' };

/** A validated script with its audio loaded. */
export interface Script {
  steps: Step[];
}

/** Longest pause or barge-in offset a script may ask for. */
const MAX_MS = 10 * 60_000;

/**
 * Parses a duration: whole milliseconds (`800`, `800ms`) or seconds (`1.5s`). `what` names the option in
 * the error message.
 */
export function parseDuration(text: string | number, what: string): number {
  const m = typeof text === 'number' ? null : /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/i.exec(text);
  const ms = typeof text === 'number' ? text : m ? Number(m[1]) * (m[2]?.toLowerCase() === 's' ? 1000 : 1) : NaN;
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_MS) {
    throw new ScriptError(`${what}: ${JSON.stringify(text)} is not a duration; use milliseconds (800) or seconds (1.5s), at most 10 minutes`);
  }
  return Math.round(ms);
}

/** Validates DTMF keys (0-9, *, #, A-D). */
function parseDigits(text: string, what: string): string {
  const digits = text.toUpperCase();
  if (!/^[0-9*#A-D]{1,64}$/.test(digits)) throw new ScriptError(`${what}: ${JSON.stringify(text)} is not a string of DTMF keys (0-9, *, #, A-D)`);
  return digits;
}

/** A flag from the command line, in the order given. */
export interface ScriptFlag {
  name: string;
  value?: string;
}

/** The flags that make up a script, for the command's parser. */
export const SCRIPT_FLAGS = ['say', 'pause', 'dtmf', 'barge-in', 'wait', 'no-wait'] as const;

/**
 * Builds a script from flags in command-line order: `--say a.wav --pause 800 --dtmf 12# --say b.wav
 * --barge-in 600`. `--barge-in` and `--no-wait` change the `--say` just before them; `--wait` is a step.
 */
export function scriptFromFlags(flags: ScriptFlag[]): ScriptStep[] {
  const steps: ScriptStep[] = [];
  const lastSay = (flag: string): { say: string; bargeInAfterMs?: number; waitForReply?: boolean } => {
    const prev = steps.at(-1);
    if (!prev || !('say' in prev)) throw new ScriptError(`--${flag} changes the --say just before it; put it right after a --say <file>`);
    return prev;
  };
  for (const { name, value } of flags) {
    const needs = (): string => {
      if (value === undefined || value === '') throw new ScriptError(`--${name} needs a value`);
      return value;
    };
    switch (name) {
      case 'say':
        steps.push({ say: needs() });
        break;
      case 'pause':
        steps.push({ pause: parseDuration(needs(), '--pause') });
        break;
      case 'dtmf':
        steps.push({ dtmf: parseDigits(needs(), '--dtmf') });
        break;
      case 'barge-in':
        lastSay(name).bargeInAfterMs = parseDuration(needs(), '--barge-in');
        break;
      case 'no-wait':
        lastSay(name).waitForReply = false;
        break;
      case 'wait':
        steps.push({ waitForReply: true });
        break;
      default:
        throw new ScriptError(`--${name} is not a script step`);
    }
  }
  return steps;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a script written as JSON: an array of steps, or `{ "steps": [...] }`. */
export function parseScriptJson(json: unknown): ScriptStep[] {
  const list = Array.isArray(json) ? json : isObject(json) && Array.isArray(json.steps) ? json.steps : null;
  if (!list) throw new ScriptError('a script is a JSON array of steps (or {"steps": [...]}), e.g. [{"say": "hello.wav"}, {"pause": 800}, {"dtmf": "12#"}]');
  return list.map((raw: unknown, i): ScriptStep => {
    const where = `step ${i + 1}`;
    if (!isObject(raw)) throw new ScriptError(`${where}: must be an object such as {"say": "hello.wav"}`);
    const keys = Object.keys(raw);
    const allowed = 'say' in raw ? ['say', 'bargeInAfterMs', 'waitForReply'] : 'pause' in raw ? ['pause'] : 'dtmf' in raw ? ['dtmf'] : 'waitForReply' in raw ? ['waitForReply'] : null;
    if (!allowed) throw new ScriptError(`${where}: needs one of say, pause, dtmf or waitForReply (got ${keys.join(', ') || 'nothing'})`);
    const extra = keys.filter((k) => !allowed.includes(k));
    if (extra.length) throw new ScriptError(`${where}: unexpected ${extra.map((k) => `"${k}"`).join(', ')} (a ${allowed[0]} step takes ${allowed.join(', ')})`);
    if ('say' in raw) {
      if (typeof raw.say !== 'string' || raw.say === '') throw new ScriptError(`${where}: say must be a file path`);
      if (raw.waitForReply !== undefined && typeof raw.waitForReply !== 'boolean') throw new ScriptError(`${where}: waitForReply must be true or false`);
      const step: ScriptStep = { say: raw.say };
      if (raw.bargeInAfterMs !== undefined) step.bargeInAfterMs = parseDuration(raw.bargeInAfterMs as string | number, `${where}: bargeInAfterMs`);
      if (raw.waitForReply !== undefined) step.waitForReply = raw.waitForReply;
      return step;
    }
    if ('pause' in raw) return { pause: parseDuration(raw.pause as string | number, `${where}: pause`) };
    if ('dtmf' in raw) {
      if (typeof raw.dtmf !== 'string') throw new ScriptError(`${where}: dtmf must be a string of keys such as "12#"`);
      return { dtmf: parseDigits(raw.dtmf, `${where}: dtmf`) };
    }
    if (raw.waitForReply !== true) throw new ScriptError(`${where}: a waitForReply step must be {"waitForReply": true}`);
    return { waitForReply: true };
  });
}

/** Speech inside a file: where it starts and ends, and the utterances it is made of. */
export interface SpeechSpan {
  startMs: number;
  endMs: number;
  /** Stretches of speech separated by at least {@link UTTERANCE_GAP_MS} of quiet. */
  utterances: Array<{ startMs: number; endMs: number }>;
}

/** Quiet that separates two utterances in one file (pauses between words are shorter). */
export const UTTERANCE_GAP_MS = 400;

/**
 * Where the speech in 8 kHz mu-law audio is: 20 ms frames with voice by the shared level rule
 * (`isVoiced`, -35 dBFS), or null for a silent file.
 */
export function speechSpan(mulaw: Uint8Array): SpeechSpan | null {
  const utterances: Array<{ startMs: number; endMs: number }> = [];
  const durationMs = (mulaw.length / 8000) * 1000;
  for (let i = 0, f = 0; i < mulaw.length; i += 160, f++) {
    if (!isVoiced(mulaw, i, Math.min(i + 160, mulaw.length))) continue;
    const startMs = f * 20;
    const endMs = Math.min(startMs + 20, durationMs);
    const last = utterances.at(-1);
    if (last && startMs - last.endMs < UTTERANCE_GAP_MS) last.endMs = endMs;
    else utterances.push({ startMs, endMs });
  }
  if (utterances.length === 0) return null;
  return { startMs: utterances[0]!.startMs, endMs: utterances.at(-1)!.endMs, utterances };
}

/**
 * Loads a script's audio and settles its waits. A say waits for the agent's reply unless it says
 * otherwise or the next step barges in on that reply (waiting would leave nothing to talk over).
 */
export async function loadScript(steps: ScriptStep[], baseDir = process.cwd()): Promise<Script> {
  if (steps.length === 0) throw new ScriptError('the script has no steps: say something with --say <file> (or give --script <file.json>)');
  const loaded: Step[] = [];
  for (const [i, step] of steps.entries()) {
    if ('say' in step) {
      const prev = steps[i - 1];
      if (step.bargeInAfterMs !== undefined && prev !== undefined && !('say' in prev)) {
        throw new ScriptError(`step ${i + 1} barges in on the agent's reply, so it must come right after the say that reply answers (or first, to talk over a greeting)`);
      }
      const next = steps[i + 1];
      const nextBargesIn = next !== undefined && 'say' in next && next.bargeInAfterMs !== undefined;
      if (nextBargesIn && step.waitForReply === true) {
        throw new ScriptError(`step ${i + 1} waits for the reply to finish, so step ${i + 2} would have nothing to barge in on`);
      }
      const file = resolve(baseDir, step.say);
      let audio: CallerAudio;
      try {
        audio = await readCallerAudio(file);
      } catch (err) {
        if (err instanceof AudioFileError) throw new ScriptError(`step ${i + 1} (say): ${err.message}`);
        throw err;
      }
      loaded.push({
        kind: 'say',
        file,
        label: basename(step.say),
        audio,
        speech: speechSpan(audio.mulaw),
        bargeInAfterMs: step.bargeInAfterMs ?? null,
        waitForReply: step.waitForReply ?? !nextBargesIn,
      });
    } else if ('pause' in step) loaded.push({ kind: 'pause', ms: step.pause });
    else if ('dtmf' in step) loaded.push({ kind: 'dtmf', digits: step.dtmf });
    else loaded.push({ kind: 'wait' });
  }
  return { steps: loaded };
}

/** Reads a JSON script file; its `say` paths are relative to the file. */
export async function readScriptFile(path: string): Promise<Script> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ScriptError(`--script ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ScriptError(`--script ${path}: not valid JSON (${(err as Error).message})`);
  }
  try {
    return await loadScript(parseScriptJson(json), dirname(resolve(path)));
  } catch (err) {
    if (err instanceof ScriptError) throw new ScriptError(`--script ${path}: ${err.message}`);
    throw err;
  }
}
