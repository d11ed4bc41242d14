// End of the caller's turn (ARCHITECTURE.md §5): VAD silence >= the agent's endpointing, combined with the
// STT's final transcript of that speech; whichever comes later wins, with a hard cap so a slow or silent
// STT cannot leave the caller waiting.

/** A finished caller turn. */
export interface UserTurn {
  text: string;
  /** Epoch ms at which the end of speech was detected (VAD), or the STT final when VAD saw no speech. */
  endOfSpeechAt: number;
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
}

/** Combines VAD and STT signals into caller turns. */
export class TurnDetector {
  private parts: string[] = [];
  private speaking = false;
  // Stream time (ms) and wall time at which VAD said speech ended; null while speaking or idle.
  private vadEnd: { streamMs: number; at: number } | null = null;
  // The furthest audio (stream ms) a final transcript has covered, and when that final arrived.
  private finalCoversMs = -1;
  private finalAt: number | null = null;
  private utteranceEnded = false;
  private cap: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  private readonly toleranceMs: number;

  constructor(
    private readonly options: TurnDetectorOptions,
    private readonly onTurn: (turn: UserTurn) => void,
    /** Asks the STT to finalize now (Deepgram `Finalize`), so its final arrives sooner. */
    private readonly onFinalizeRequest: () => void = () => {},
  ) {
    this.now = options.now ?? Date.now;
    this.toleranceMs = options.toleranceMs ?? 300;
  }

  /** Whether the caller is talking (VAD). */
  get callerSpeaking(): boolean {
    return this.speaking;
  }

  /** Transcribed words not yet part of a finished turn. */
  get pendingText(): string {
    return this.parts.join(' ');
  }

  /** VAD: speech began. */
  speechStarted(): void {
    this.speaking = true;
    this.vadEnd = null;
    this.utteranceEnded = false;
    this.clearCap();
  }

  /** VAD: speech ended at stream time `streamMs`, detected at epoch ms `at`. */
  speechEnded(streamMs: number, at: number): void {
    this.speaking = false;
    this.vadEnd = { streamMs, at };
    if (this.tryCommit()) return;
    this.onFinalizeRequest();
    this.clearCap();
    this.cap = setTimeout(() => this.commit(null), this.options.capMs);
    this.cap.unref?.();
  }

  /** STT: a final transcript of audio up to `endSec` (stream seconds). */
  sttFinal(text: string, endSec: number, speechFinal: boolean): void {
    if (text.trim()) this.parts.push(text.trim());
    this.finalCoversMs = Math.max(this.finalCoversMs, endSec * 1000);
    this.finalAt = this.now();
    if (this.tryCommit()) return;
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
    this.parts = [];
  }

  private tryCommit(): boolean {
    if (!this.vadEnd) return false;
    const covered = this.finalCoversMs >= this.vadEnd.streamMs - this.toleranceMs;
    if (!covered && !this.utteranceEnded) return false;
    this.commit(this.finalAt);
    return true;
  }

  private commit(sttFinalAt: number | null, endOfSpeechAt = this.vadEnd?.at ?? this.now()): void {
    this.clearCap();
    const text = this.parts.join(' ').trim();
    this.parts = [];
    this.vadEnd = null;
    this.utteranceEnded = false;
    // Noise VAD took for speech, with no words: not a turn.
    if (!text) return;
    this.onTurn({ text, endOfSpeechAt, sttFinalAt });
  }

  private clearCap(): void {
    if (this.cap) clearTimeout(this.cap);
    this.cap = null;
  }
}
