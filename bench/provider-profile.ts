// The provider latencies the call benchmark's fakes answer with (`--profile zero|cloud`). `zero` is what the
// fakes always did: no added delay, so the figures isolate our own cost. `cloud` gives them the latencies of
// fast cloud providers, so that what the caller waits (`callerWaitMs`) looks like a real deployment's; where
// each number comes from is in BENCHMARKS.md ("Provider profiles").

/** A latency with its spread: each draw is uniform in [ms - jitterMs, ms + jitterMs], never below 0. */
export interface Latency {
  ms: number;
  jitterMs: number;
}

/** The latencies of one profile. */
export interface ProviderProfile {
  name: ProfileName;
  /** Deepgram: a final arrives this long after the caller's speech ended (never before its own endpoint). */
  sttFinalAfterSpeechMs: Latency;
  /** Deepgram: a final asked for with `Finalize` arrives this long after it. */
  sttFinalizeMs: Latency;
  /** OpenAI: request -> first token. */
  llmFirstTokenMs: Latency;
  /** OpenAI: between tokens (the fake streams a word per token). */
  llmTokenMs: Latency;
  /** Text-to-speech: request -> first audio byte. */
  ttsFirstByteMs: Latency;
  /**
   * Which voice the agent speaks with: Piper in the server's media workers (no added delay possible, it is
   * our own code) or the fake ElevenLabs in the fakes' process (a cloud voice with `ttsFirstByteMs`).
   */
  tts: 'piper' | 'elevenlabs';
}

export const PROFILE_NAMES = ['zero', 'cloud'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** The default: see BENCHMARKS.md ("Provider profiles") for why. */
export const DEFAULT_PROFILE: ProfileName = 'zero';

const none: Latency = { ms: 0, jitterMs: 0 };

export const PROFILES: Record<ProfileName, ProviderProfile> = {
  zero: { name: 'zero', sttFinalAfterSpeechMs: none, sttFinalizeMs: none, llmFirstTokenMs: none, llmTokenMs: none, ttsFirstByteMs: none, tts: 'piper' },
  cloud: {
    name: 'cloud',
    sttFinalAfterSpeechMs: { ms: 150, jitterMs: 50 },
    sttFinalizeMs: { ms: 60, jitterMs: 20 },
    llmFirstTokenMs: { ms: 300, jitterMs: 100 },
    llmTokenMs: { ms: 25, jitterMs: 10 },
    ttsFirstByteMs: { ms: 100, jitterMs: 30 },
    tts: 'elevenlabs',
  },
};

/** Parses `--profile`. */
export function parseProfile(raw: string | undefined): ProviderProfile {
  const name = raw ?? DEFAULT_PROFILE;
  if (!(PROFILE_NAMES as readonly string[]).includes(name)) throw new Error(`--profile must be one of ${PROFILE_NAMES.join(', ')}, got "${name}"`);
  return PROFILES[name as ProfileName];
}

/**
 * Draws latencies from a seeded generator (mulberry32), so a run's jitter is the same sequence every time
 * (the order in which calls draw still depends on timing).
 */
export class LatencyDraw {
  private state: number;

  constructor(seed = 11) {
    this.state = seed >>> 0;
  }

  /** A uniform number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** One draw of `l`, whole ms. */
  ms(l: Latency): number {
    if (l.jitterMs === 0) return l.ms;
    return Math.max(0, Math.round(l.ms + (this.next() * 2 - 1) * l.jitterMs));
  }
}
