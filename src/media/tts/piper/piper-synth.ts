// Piper inference on onnxruntime-node, ending in what the phone carries: 8 kHz mu-law. Runs inside a media
// worker thread (ARCHITECTURE.md §3), one InferenceSession per voice per worker, one intra-op thread each.
//
// Per sentence: phonemes -> ids -> one model run -> Piper's peak normalization to PCM16 -> our polyphase
// resampler (one stream across the sentences, so there is no click at the seams) -> mu-law. onnxruntime-node
// runs a model synchronously on the calling thread, so the worker's event loop (and the VAD of every call
// on it) waits for one run: that is why inference is per sentence, long sentences are cut at clauses, and
// the loop is yielded to between runs.
import { access } from 'node:fs/promises';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { pcm16ToMulaw } from '../../audio/mulaw.js';
import { Resampler } from '../../audio/resampler.js';
import { EspeakPhonemizer, TextPhonemizer, type Phonemizer } from './phonemizer.js';
import { phonemesToIds, piperVoicePaths, readPiperVoiceConfig, splitLongSentence, type PiperVoiceConfig } from './piper-voice.js';

/** The rate of everything leaving this module. */
const OUTPUT_RATE = 8000;
const MAX_WAV_VALUE = 32767;
const REQUIRED_INPUTS = ['input', 'input_lengths', 'scales'] as const;

/** How one piece of text is spoken. */
export interface PiperSynthesisOptions {
  /** Speaker of a multi-speaker voice (ignored by single-speaker voices). Default 0. */
  speakerId?: number;
  /** 1 = the voice's pace, 2 = twice as fast: divides the voice's length_scale. Default 1. */
  speed?: number;
}

/** Where the time went for one request, measured inside the thread that ran it. */
export interface PiperStats {
  /** Phonemizing plus inference plus conversion, excluding time spent waiting for the consumer. */
  synthMs: number;
  /** Duration of the audio produced. */
  audioMs: number;
  /** Model runs. */
  runs: number;
}

/** A loaded Piper voice: its config and its inference session. */
export class PiperVoice {
  private readonly missingLogged = new Set<string>();

  private constructor(
    readonly name: string,
    readonly config: PiperVoiceConfig,
    private readonly session: InferenceSession,
    private readonly outputName: string,
  ) {}

  /** Loads `<voicesDir>/<name>.onnx` and its `.onnx.json`; errors say what is missing or wrong. */
  static async load(voicesDir: string, name: string): Promise<PiperVoice> {
    const { onnxPath, configPath } = piperVoicePaths(voicesDir, name);
    try {
      await access(configPath);
    } catch {
      throw new Error(`Piper voice "${name}" is not installed: ${configPath} does not exist`);
    }
    try {
      await access(onnxPath);
    } catch {
      throw new Error(`Piper voice "${name}" is not installed: ${onnxPath} does not exist`);
    }
    return PiperVoice.loadFiles(onnxPath, configPath, name);
  }

  /** Loads a voice from explicit paths. */
  static async loadFiles(onnxPath: string, configPath: string, name = onnxPath): Promise<PiperVoice> {
    const config = await readPiperVoiceConfig(configPath);
    let session: InferenceSession;
    try {
      session = await InferenceSession.create(onnxPath, {
        // ARCHITECTURE.md §3: workers x threads <= cores.
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new Error(`cannot load Piper model ${onnxPath}: ${(err as Error).message}`);
    }
    const expected = config.numSpeakers > 1 ? [...REQUIRED_INPUTS, 'sid'] : [...REQUIRED_INPUTS];
    const missing = expected.filter((n) => !session.inputNames.includes(n));
    if (missing.length > 0 || session.outputNames.length === 0) {
      await session.release();
      throw new Error(
        `${onnxPath} is not a Piper model for its config: inputs [${session.inputNames.join(', ')}], ` +
          `outputs [${session.outputNames.join(', ')}]; expected inputs [${expected.join(', ')}] and an output`,
      );
    }
    const outputName = session.outputNames.includes('output') ? 'output' : session.outputNames[0]!;
    return new PiperVoice(name, config, session, outputName);
  }

  /** Phonemes that the voice's id map lacks and that were not reported yet (so each is logged once). */
  newlyMissing(missing: readonly string[]): string[] {
    const fresh = missing.filter((p) => !this.missingLogged.has(p));
    for (const p of fresh) this.missingLogged.add(p);
    return fresh;
  }

  /** One model run: phoneme ids in, the model's float audio (about -1..1, at config.sampleRate) out. */
  async infer(ids: readonly number[], options: PiperSynthesisOptions = {}): Promise<Float32Array> {
    const speed = options.speed ?? 1;
    if (!Number.isFinite(speed) || speed <= 0) throw new Error(`speed must be a positive number, got ${speed}`);
    const { noiseScale, lengthScale, noiseW, numSpeakers } = this.config;
    const feeds: Record<string, Tensor> = {
      input: new Tensor('int64', BigInt64Array.from(ids, (id) => BigInt(id)), [1, ids.length]),
      input_lengths: new Tensor('int64', BigInt64Array.of(BigInt(ids.length)), [1]),
      scales: new Tensor('float32', Float32Array.of(noiseScale, lengthScale / speed, noiseW), [3]),
    };
    if (numSpeakers > 1) {
      const sid = options.speakerId ?? 0;
      if (!Number.isInteger(sid) || sid < 0 || sid >= numSpeakers) {
        throw new Error(`speaker ${sid} does not exist in Piper voice "${this.name}" (${numSpeakers} speakers)`);
      }
      feeds.sid = new Tensor('int64', BigInt64Array.of(BigInt(sid)), [1]);
    }
    let results: InferenceSession.OnnxValueMapType;
    try {
      results = await this.session.run(feeds);
    } catch (err) {
      throw new Error(`Piper voice "${this.name}" inference failed: ${(err as Error).message}`);
    }
    const output = results[this.outputName] as Tensor | undefined;
    if (!output || output.type !== 'float32') throw new Error(`Piper voice "${this.name}" returned no float32 "${this.outputName}"`);
    // [1, 1, 1, T] or [1, 1, T]: every leading dimension is 1, so the data is the samples.
    return output.data as Float32Array;
  }

  /** Frees the session; the voice cannot be used afterwards. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Piper's conversion of model output to PCM16: scale so the sentence's peak lands at full scale (peaks below
 * 0.01 are not amplified further, so near-silence stays quiet), then clip.
 */
export function piperAudioToPcm16(audio: Float32Array): Int16Array {
  let peak = 0;
  for (let i = 0; i < audio.length; i++) {
    const a = Math.abs(audio[i]!);
    if (a > peak) peak = a;
  }
  const scale = MAX_WAV_VALUE / Math.max(0.01, peak);
  const pcm = new Int16Array(audio.length);
  for (let i = 0; i < audio.length; i++) {
    const v = Math.round(audio[i]! * scale);
    pcm[i] = v > MAX_WAV_VALUE ? MAX_WAV_VALUE : v < -MAX_WAV_VALUE ? -MAX_WAV_VALUE : v;
  }
  return pcm;
}

/** Options of one {@link synthesizePiperMulaw} run. */
export interface PiperRunOptions extends PiperSynthesisOptions {
  /** Aborting stops before the next sentence and discards the output of a run in progress; the iteration ends. */
  signal?: AbortSignal;
  /** Longer sentences are cut at clauses so one model run stays short. Default 400 phonemes. */
  maxPhonemesPerRun?: number;
  /** Told about phonemes the voice has no ids for (once per phoneme per voice). */
  onLog?: (msg: string) => void;
}

/**
 * Speaks `text` with `voice`, yielding 8 kHz mu-law as each sentence is ready; `stats`, when given, is
 * updated as it goes. Throws on phonemizer or inference failure; ends quietly when aborted.
 */
export async function* synthesizePiperMulaw(
  voice: PiperVoice,
  phonemizer: Phonemizer,
  text: string,
  options: PiperRunOptions = {},
  stats: PiperStats = { synthMs: 0, audioMs: 0, runs: 0 },
): AsyncGenerator<Uint8Array> {
  const { signal } = options;
  const maxPhonemes = options.maxPhonemesPerRun ?? 400;
  if (signal?.aborted) return;
  let t0 = performance.now();
  const sentences = (await phonemizer.phonemize(text, voice.config.espeakVoice)).flatMap((s) => splitLongSentence(s, maxPhonemes));
  stats.synthMs += performance.now() - t0;
  const resampler = new Resampler(voice.config.sampleRate, OUTPUT_RATE);
  for (let i = 0; i < sentences.length; i++) {
    // Frames queued for VAD on this thread run here, between two model runs.
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) return;
    t0 = performance.now();
    const { ids, missing } = phonemesToIds(sentences[i]!, voice.config.phonemeIdMap);
    const fresh = voice.newlyMissing(missing);
    if (fresh.length > 0) options.onLog?.(`Piper voice "${voice.name}" has no ids for ${fresh.map((p) => JSON.stringify(p)).join(', ')}; skipped`);
    const audio = await voice.infer(ids, options);
    if (signal?.aborted) return;
    const mulaw = pcm16ToMulaw(resampler.process(piperAudioToPcm16(audio)));
    stats.synthMs += performance.now() - t0;
    stats.audioMs += (audio.length / voice.config.sampleRate) * 1000;
    stats.runs++;
    if (mulaw.length > 0) yield mulaw;
  }
  if (signal?.aborted) return;
  const tail = resampler.flush();
  if (tail.length > 0) yield pcm16ToMulaw(tail);
}

/** Options of a {@link PiperSynthesizer}. */
export interface PiperSynthesizerOptions {
  /** Directory holding `<voice>.onnx` + `<voice>.onnx.json`. */
  voicesDir: string;
  /** Voices kept loaded (least recently used is released first). Default 4. */
  maxVoices?: number;
  /** Phonemizers by phoneme_type; default espeak-ng (separate process) and codepoints. */
  phonemizers?: { espeak?: Phonemizer; text?: Phonemizer };
  /** Long-sentence cut, see {@link PiperRunOptions.maxPhonemesPerRun}. */
  maxPhonemesPerRun?: number;
  onLog?: (msg: string) => void;
}

interface CachedVoice {
  loading: Promise<PiperVoice>;
  users: number;
  evicted: boolean;
}

/** One thread's Piper: loads voices lazily from a directory, keeps a few loaded, synthesizes to mu-law. */
export class PiperSynthesizer {
  private readonly voices = new Map<string, CachedVoice>();
  private readonly maxVoices: number;
  private readonly espeak: Phonemizer;
  private readonly text: Phonemizer;

  constructor(private readonly opts: PiperSynthesizerOptions) {
    this.maxVoices = Math.max(1, opts.maxVoices ?? 4);
    this.espeak = opts.phonemizers?.espeak ?? new EspeakPhonemizer();
    this.text = opts.phonemizers?.text ?? new TextPhonemizer();
  }

  /** Names of the voices loaded or loading, least recently used first. */
  loadedVoices(): string[] {
    return [...this.voices.keys()];
  }

  /** Speaks `text` with voice `voice`; see {@link synthesizePiperMulaw}. A voice that fails to load throws here. */
  async *synthesize(text: string, voice: string, options: PiperRunOptions = {}, stats?: PiperStats): AsyncGenerator<Uint8Array> {
    const entry = this.acquire(voice);
    try {
      const loaded = await entry.loading;
      const phonemizer = loaded.config.phonemeType === 'text' ? this.text : this.espeak;
      yield* synthesizePiperMulaw(loaded, phonemizer, text, { maxPhonemesPerRun: this.opts.maxPhonemesPerRun, onLog: this.opts.onLog, ...options }, stats);
    } finally {
      this.releaseEntry(entry);
    }
  }

  /** Releases every loaded voice. */
  async close(): Promise<void> {
    const entries = [...this.voices.values()];
    this.voices.clear();
    await Promise.all(entries.map((e) => e.loading.then((v) => v.release(), () => undefined)));
  }

  private acquire(name: string): CachedVoice {
    let entry = this.voices.get(name);
    if (entry) {
      this.voices.delete(name); // re-insert: Map order is the LRU order
      this.voices.set(name, entry);
    } else {
      const created: CachedVoice = { loading: PiperVoice.load(this.opts.voicesDir, name), users: 0, evicted: false };
      // A failed load is not cached: the next request tries again (the voice may have been installed since).
      created.loading.catch(() => {
        if (this.voices.get(name) === created) this.voices.delete(name);
      });
      this.voices.set(name, created);
      entry = created;
      this.evict();
    }
    entry.users++;
    return entry;
  }

  private evict(): void {
    for (const [name, entry] of this.voices) {
      if (this.voices.size <= this.maxVoices) break;
      this.voices.delete(name);
      entry.evicted = true;
      if (entry.users === 0) this.dispose(entry);
    }
  }

  private releaseEntry(entry: CachedVoice): void {
    entry.users--;
    if (entry.evicted && entry.users === 0) this.dispose(entry);
  }

  private dispose(entry: CachedVoice): void {
    entry.loading.then((v) => v.release()).catch(() => undefined);
  }
}
