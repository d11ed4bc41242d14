// End of the caller's turn (ARCHITECTURE.md §5): VAD silence long enough for the words so far (the
// end-of-turn policy: a fixed endpointing, or adaptive), combined with the STT's final transcript of that
// speech; whichever comes later wins, with a hard cap so a slow or silent STT cannot leave the caller waiting.
import type { EndOfTurnPolicy } from './end-of-turn.js';

// An early pause's final must reach the end of the voice, give or take a frame (its Finalize came after it).
const EARLY_TOLERANCE_MS = 20;
// The model may hear the pause begin a little before the level's last voiced frame (a quiet last sound).
const QUIET_BEFORE_VOICE_END_MS = 100;

/** A finished caller turn. */
export interface UserTurn {
  text: string;
  /**
   * Epoch ms at which the end of the turn was decided: VAD's speech end, or the end of the policy's longer
   * wait after it (adaptive); the STT final when VAD saw no speech.
   */
  endOfSpeechAt: number;
  /** The silence the end-of-turn policy asked for this turn (ms since the caller's last voiced audio), when VAD ended it. */
  endOfTurnSilenceMs?: number;
  /** Epoch ms of the STT final that completed the turn; null when the cap forced the turn. */
  sttFinalAt: number | null;
}

/** Options of the detector. */
export interface TurnDetectorOptions {
  /** After VAD end of speech, wait at most this long for the STT's final. */
  capMs: number;
  /** A final counts for a VAD end of speech when it covers audio up to this close to that end. */
  toleranceMs?: number;
  now?: () => number;
  /** How long a pause ends the turn; default: every VAD speech end does. */
  policy?: EndOfTurnPolicy;
  /**
   * Silence by the level rule (ms after the last voiced frame) that counts as an early pause: the STT is
   * asked to finalize and finished-looking words are reported to `onPause`, before VAD (which reacts about
   * 100 ms after the voice stops) has ended speech. Adaptive policies only; default 100.
   */
  earlyPauseMs?: number;
}

/** What the detector tells besides finished turns. */
export interface TurnDetectorHooks {
  /**
   * The caller paused and the STT has transcribed everything before the pause, but the pause is not yet
   * long enough to end the turn: `text` is what the turn will be if they say nothing more.
   */
  onPause?(text: string): void;
  /** The caller went on talking after a pause reported by `onPause` (or the words changed). */
  onResume?(): void;
}

/** Combines VAD and STT signals into caller turns. */
export class TurnDetector {
  private parts: string[] = [];
  private speaking = false;
  // Stream time (ms) and wall time at which VAD said speech ended (`at` in the worker's clock, `localAt` in
  // this detector's: waits are timed on one clock); null while speaking or idle.
  private vadEnd: { streamMs: number; at: number; localAt: number } | null = null;
  // The furthest audio (stream ms) a final transcript has covered, and when that final arrived.
  private finalCoversMs = -1;
  private finalAt: number | null = null;
  private utteranceEnded = false;
  private cap: NodeJS.Timeout | null = null;
  // The policy's silence for the current pause: pending until it has passed.
  private wait: NodeJS.Timeout | null = null;
  private waitElapsed = true;
  // When the policy's wait ran out (in the clock of VAD's `at`), and the silence it asked for.
  private waitEndedAt: number | null = null;
  private silenceAskedMs: number | undefined;
  // The text last reported by onPause (null: none reported for this pause).
  private pausedOn: string | null = null;
  // Stream time (ms) at which the caller's last voiced frame ended, by the level rule; -1 before any.
  private lastVoicedMs = -1;
  // An early pause (level silence while VAD still hears speech): where the voice stopped, in stream ms.
  private earlyPause: { streamMs: number } | null = null;
  // Stream ms from which VAD's model hears a pause inside speech; null while it hears voice.
  private quietFromMs: number | null = null;
  private readonly earlyPauseMs: number;
  private readonly now: () => number;
  private readonly toleranceMs: number;

  constructor(
    private readonly options: TurnDetectorOptions,
    private readonly onTurn: (turn: UserTurn) => void,
    /** Asks the STT to finalize now (Deepgram `Finalize`), so its final arrives sooner. */
    private readonly onFinalizeRequest: () => void = () => {},
    private readonly hooks: TurnDetectorHooks = {},
  ) {
    // Read through Date at each call, so a test's fake clock installed later applies.
    this.now = options.now ?? (() => Date.now());
    this.toleranceMs = options.toleranceMs ?? 300;
    this.earlyPauseMs = options.earlyPauseMs ?? 100;
  }

  /** Whether the caller is talking (VAD). */
  get callerSpeaking(): boolean {
    return this.speaking;
  }

  /** Transcribed words not yet part of a finished turn. */
  get pendingText(): string {
    return this.parts.join(' ');
  }

  /**
   * One 20 ms frame of the caller's audio, voiced or not by the level rule, ending at stream time
   * `streamEndMs`. VAD decides speech; the level only finds pauses early, and voice after one.
   */
  audioFrame(voiced: boolean, streamEndMs: number): void {
    if (voiced) {
      this.lastVoicedMs = streamEndMs;
      if (this.earlyPause) {
        this.earlyPause = null;
        this.resumed();
      }
      return;
    }
    if (this.earlyPause || !this.speaking || this.lastVoicedMs < 0 || !this.options.policy?.adaptive) return;
    if (streamEndMs - this.lastVoicedMs < this.earlyPauseMs) return;
    this.earlyPause = { streamMs: this.lastVoicedMs };
    // The words up to the pause, now rather than at VAD's speech end: what an early LLM request needs
    // (unless a final has them already).
    this.paused();
    if (this.pausedOn === null) this.onFinalizeRequest();
  }

  /**
   * VAD, inside speech: its model hears a pause from stream time `atMs` (`quiet`), or voice again. The
   * level finds a pause first; the model, about 100 ms behind, tells a pause from the gap between two
   * words, so the LLM is asked only once both agree.
   */
  speechQuiet(quiet: boolean, atMs: number): void {
    this.quietFromMs = quiet ? atMs : null;
    if (quiet) this.paused();
  }

  /** VAD: speech began. */
  speechStarted(): void {
    this.speaking = true;
    this.vadEnd = null;
    this.earlyPause = null;
    this.quietFromMs = null;
    this.utteranceEnded = false;
    this.clearCap();
    this.clearWait();
    this.resumed();
  }

  /** VAD: speech ended at stream time `streamMs`, detected at epoch ms `at`. */
  speechEnded(streamMs: number, at: number): void {
    this.speaking = false;
    this.vadEnd = { streamMs, at, localAt: this.now() };
    this.earlyPause = null;
    this.quietFromMs = null;
    const waitMs = this.armWait();
    if (this.tryCommit()) return;
    // An early pause's Finalize may have brought every word already.
    if (!this.covered()) this.onFinalizeRequest();
    this.clearCap();
    // The cap counts from the end of the policy's wait: it bounds the STT, not the pause.
    this.cap = setTimeout(() => this.commit(null), this.options.capMs + waitMs);
    this.cap.unref?.();
    this.paused();
  }

  /** STT: a final transcript of audio up to `endSec` (stream seconds). */
  sttFinal(text: string, endSec: number, speechFinal: boolean): void {
    if (text.trim()) this.parts.push(text.trim());
    this.finalCoversMs = Math.max(this.finalCoversMs, endSec * 1000);
    this.finalAt = this.now();
    // New words during a pause: the policy reads them again ("for," -> "for four people.").
    if (this.vadEnd && !this.waitElapsed) this.armWait();
    if (this.tryCommit()) return;
    this.paused();
    // Speech too short for VAD to call it speech ("yes"): the STT's endpointing is all there is.
    if (speechFinal && !this.speaking && !this.vadEnd && this.parts.length > 0) this.commit(this.finalAt, this.finalAt);
  }

  /** STT: no more words are coming for the current utterance. */
  utteranceEnd(): void {
    if (this.vadEnd) this.utteranceEnded = true;
    if (this.tryCommit()) return;
    if (!this.speaking && !this.vadEnd && this.parts.length > 0) this.commit(this.now(), this.now());
  }

  /** Drops pending words and timers (the call ended). */
  close(): void {
    this.clearCap();
    this.clearWait();
    this.parts = [];
    this.earlyPause = null;
    this.quietFromMs = null;
  }

  // Arms the policy's wait for the current pause, counted from VAD's speech end; returns what is left (ms).
  private armWait(): number {
    this.clearWait();
    const vadEnd = this.vadEnd;
    const policy = this.options.policy;
    this.waitEndedAt = null;
    if (!vadEnd || !policy) {
      this.waitElapsed = true;
      this.silenceAskedMs = undefined;
      return 0;
    }
    this.silenceAskedMs = policy.silenceMs({ text: this.pendingText });
    const extraMs = this.silenceAskedMs - policy.vadSilenceMs;
    const leftMs = vadEnd.localAt + extraMs - this.now();
    if (leftMs <= 0) {
      this.waitElapsed = true;
      if (extraMs > 0) this.waitEndedAt = vadEnd.at + extraMs;
      return 0;
    }
    this.waitElapsed = false;
    this.wait = setTimeout(() => {
      this.wait = null;
      this.waitElapsed = true;
      this.waitEndedAt = vadEnd.at + (this.now() - vadEnd.localAt);
      this.tryCommit();
    }, leftMs);
    this.wait.unref?.();
    return leftMs;
  }

  // Tells that the caller paused with every word transcribed, once per distinct text: in VAD's pause
  // while the policy's wait runs, or in an early pause when the words would end the turn at the shortest
  // silence (an unfinished clause is left for VAD's pause: the caller most likely goes on).
  private paused(): void {
    const text = this.pendingText;
    if (this.vadEnd) {
      if (this.waitElapsed || !this.covered()) return;
    } else {
      const policy = this.options.policy;
      if (!this.earlyPause || !policy || this.finalCoversMs < this.earlyPause.streamMs - EARLY_TOLERANCE_MS) return;
      if (!this.modelHearsPause(this.earlyPause.streamMs)) return;
      if (policy.silenceMs({ text }) > policy.vadSilenceMs) return;
    }
    if (!text || text === this.pausedOn) return;
    if (this.pausedOn !== null) this.hooks.onResume?.();
    this.pausedOn = text;
    this.hooks.onPause?.(text);
  }

  // Whether VAD's model hears the pause that began at `voiceEndMs` (its view starts a little before or after).
  private modelHearsPause(voiceEndMs: number): boolean {
    return this.quietFromMs !== null && this.quietFromMs >= voiceEndMs - QUIET_BEFORE_VOICE_END_MS;
  }

  private resumed(): void {
    if (this.pausedOn === null) return;
    this.pausedOn = null;
    this.hooks.onResume?.();
  }

  private covered(): boolean {
    return this.vadEnd !== null && this.finalCoversMs >= this.vadEnd.streamMs - this.toleranceMs;
  }

  private tryCommit(): boolean {
    if (!this.vadEnd || !this.waitElapsed) return false;
    if (!this.covered() && !this.utteranceEnded) return false;
    this.commit(this.finalAt);
    return true;
  }

  private commit(sttFinalAt: number | null, endOfSpeechAt = this.waitEndedAt ?? this.vadEnd?.at ?? this.now()): void {
    const silenceMs = this.vadEnd ? this.silenceAskedMs : undefined;
    this.clearCap();
    this.clearWait();
    this.waitElapsed = true;
    this.waitEndedAt = null;
    this.pausedOn = null;
    const text = this.parts.join(' ').trim();
    this.parts = [];
    this.vadEnd = null;
    this.utteranceEnded = false;
    // Noise VAD took for speech, with no words: not a turn.
    if (!text) return;
    this.onTurn(silenceMs === undefined ? { text, endOfSpeechAt, sttFinalAt } : { text, endOfSpeechAt, sttFinalAt, endOfTurnSilenceMs: silenceMs });
  }

  private clearWait(): void {
    if (this.wait) clearTimeout(this.wait);
    this.wait = null;
  }

  private clearCap(): void {
    if (this.cap) clearTimeout(this.cap);
    this.cap = null;
  }
}
