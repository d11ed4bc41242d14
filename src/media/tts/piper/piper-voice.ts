// A Piper voice's configuration (`<name>.onnx.json`) and the phonemes -> model ids step. Field names and
// the id layout follow Piper (rhasspy/piper, OHF-Voice/piper1-gpl) exactly, so any published voice works.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** How a voice turns text into phonemes: espeak-ng IPA, or the text's own codepoints. */
export type PhonemeType = 'espeak' | 'text';

/** The parts of a Piper voice config that synthesis needs, validated. */
export interface PiperVoiceConfig {
  /** Rate of the model's output audio, e.g. 22050. */
  sampleRate: number;
  phonemeType: PhonemeType;
  /** espeak-ng voice the model was trained with, e.g. `en-us` (used when phonemeType is `espeak`). */
  espeakVoice: string;
  /** Phoneme (one or more codepoints) -> model ids; always holds the pad, bos and eos symbols. */
  phonemeIdMap: ReadonlyMap<string, readonly number[]>;
  numSpeakers: number;
  speakerIdMap: Readonly<Record<string, number>>;
  /** The voice's default inference scales. */
  noiseScale: number;
  lengthScale: number;
  noiseW: number;
  /** e.g. `en_US`, when the config says. */
  languageCode?: string;
}

/** Piper's special symbols: pad between phonemes, beginning and end of a sentence. */
export const PAD = '_';
export const BOS = '^';
export const EOS = '$';

const VOICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `name` is a safe voice name: letters, digits, `.`, `_`, `-`, not starting with a dot (no paths). */
export function isValidVoiceName(name: string): boolean {
  return name.length <= 200 && VOICE_NAME.test(name);
}

/** Where voice `name` lives in `voicesDir`; throws for a name that could escape the directory. */
export function piperVoicePaths(voicesDir: string, name: string): { onnxPath: string; configPath: string } {
  if (!isValidVoiceName(name)) throw new Error(`invalid Piper voice name ${JSON.stringify(name)}`);
  const onnxPath = join(voicesDir, `${name}.onnx`);
  return { onnxPath, configPath: `${onnxPath}.json` };
}

/** Reads and validates `<name>.onnx.json`; the error says which file and which field is wrong. */
export async function readPiperVoiceConfig(configPath: string): Promise<PiperVoiceConfig> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${configPath} does not exist` : `cannot read ${configPath}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${configPath} is not valid JSON: ${(err as Error).message}`);
  }
  return parsePiperVoiceConfig(json, configPath);
}

/** Validates a parsed voice config; `source` names it in errors. */
export function parsePiperVoiceConfig(json: unknown, source = 'voice config'): PiperVoiceConfig {
  const bad = (field: string, why: string): never => {
    throw new Error(`${source}: ${field} ${why}`);
  };
  if (!isObject(json)) return bad('(root)', 'must be a JSON object');

  const audio = json.audio;
  const sampleRate = isObject(audio) ? audio.sample_rate : undefined;
  if (typeof sampleRate !== 'number' || !Number.isInteger(sampleRate) || sampleRate < 1000 || sampleRate > 192_000) {
    bad('audio.sample_rate', 'must be an integer sample rate in Hz');
  }

  const rawType = json.phoneme_type ?? 'espeak';
  if (rawType !== 'espeak' && rawType !== 'text') bad('phoneme_type', `must be "espeak" or "text", got ${JSON.stringify(rawType)}`);
  const phonemeType = rawType as PhonemeType;

  const espeak = json.espeak;
  const espeakVoice = isObject(espeak) && typeof espeak.voice === 'string' ? espeak.voice : undefined;
  if (phonemeType === 'espeak' && !espeakVoice) bad('espeak.voice', 'is required when phoneme_type is "espeak"');

  const rawMap = json.phoneme_id_map;
  if (!isObject(rawMap)) return bad('phoneme_id_map', 'must be an object of phoneme -> [ids]');
  const phonemeIdMap = new Map<string, number[]>();
  for (const [phoneme, ids] of Object.entries(rawMap)) {
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => Number.isInteger(id) && id >= 0)) {
      bad(`phoneme_id_map[${JSON.stringify(phoneme)}]`, 'must be a non-empty array of non-negative integers');
    }
    phonemeIdMap.set(phoneme, ids as number[]);
  }
  for (const symbol of [PAD, BOS, EOS]) {
    if (!phonemeIdMap.has(symbol)) bad('phoneme_id_map', `lacks the ${JSON.stringify(symbol)} symbol`);
  }

  const numSpeakers = json.num_speakers ?? 1;
  if (typeof numSpeakers !== 'number' || !Number.isInteger(numSpeakers) || numSpeakers < 1) bad('num_speakers', 'must be a positive integer');

  const rawSpeakers = json.speaker_id_map ?? {};
  if (!isObject(rawSpeakers) || !Object.values(rawSpeakers).every((v) => Number.isInteger(v))) bad('speaker_id_map', 'must map names to integer ids');

  const inference = isObject(json.inference) ? json.inference : {};
  const scale = (key: string, fallback: number): number => {
    const v = inference[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(`inference.${key}`, 'must be a non-negative number');
    return v as number;
  };
  const lengthScale = scale('length_scale', 1);
  if (lengthScale <= 0) bad('inference.length_scale', 'must be positive');

  const language = json.language;
  const languageCode = isObject(language) && typeof language.code === 'string' ? language.code : undefined;

  return {
    sampleRate: sampleRate as number,
    phonemeType,
    espeakVoice: espeakVoice ?? 'en-us',
    phonemeIdMap,
    numSpeakers: numSpeakers as number,
    speakerIdMap: rawSpeakers as Record<string, number>,
    noiseScale: scale('noise_scale', 0.667),
    lengthScale,
    noiseW: scale('noise_w', 0.8),
    ...(languageCode === undefined ? {} : { languageCode }),
  };
}

/** Model ids of one sentence, and the phonemes that had none (skipped). */
export interface PhonemeIds {
  ids: number[];
  missing: string[];
}

/**
 * Piper's id layout for one sentence: bos ids, pad, then each phoneme's ids followed by pad, then eos.
 * Phonemes missing from the map are skipped, as Piper does; they are returned so the caller can log them.
 */
export function phonemesToIds(phonemes: readonly string[], idMap: ReadonlyMap<string, readonly number[]>): PhonemeIds {
  const pad = idMap.get(PAD)!;
  const ids: number[] = [...idMap.get(BOS)!, ...pad];
  const missing: string[] = [];
  for (const phoneme of phonemes) {
    const mapped = idMap.get(phoneme);
    if (!mapped) {
      if (!missing.includes(phoneme)) missing.push(phoneme);
      continue;
    }
    ids.push(...mapped, ...pad);
  }
  ids.push(...idMap.get(EOS)!);
  return { ids, missing };
}

/** Phonemes after which a long sentence may be cut: clause punctuation as the phonemizers emit it. */
const CLAUSE_ENDS = new Set([',', ';', ':', '.', '!', '?']);

/**
 * Cuts a sentence longer than `maxPhonemes` into pieces of at most that length, preferring the last clause
 * boundary (punctuation) and then the last space before the limit. Piper synthesizes whole sentences; a
 * worker that also runs VAD cannot block its event loop for one very long sentence's inference.
 */
export function splitLongSentence(phonemes: readonly string[], maxPhonemes: number): string[][] {
  const pieces: string[][] = [];
  let start = 0;
  while (phonemes.length - start > maxPhonemes) {
    const end = start + maxPhonemes;
    let cut = -1;
    for (let i = end - 1; i > start && cut === -1; i--) if (CLAUSE_ENDS.has(phonemes[i]!)) cut = i + 1;
    for (let i = end - 1; i > start && cut === -1; i--) if (phonemes[i] === ' ') cut = i + 1;
    if (cut === -1) cut = end;
    pieces.push(trimSpaces(phonemes.slice(start, cut)));
    start = cut;
  }
  pieces.push(trimSpaces(phonemes.slice(start)));
  return pieces.filter((p) => p.length > 0);
}

function trimSpaces(phonemes: string[]): string[] {
  let a = 0;
  let b = phonemes.length;
  while (a < b && phonemes[a] === ' ') a++;
  while (b > a && phonemes[b - 1] === ' ') b--;
  return phonemes.slice(a, b);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
