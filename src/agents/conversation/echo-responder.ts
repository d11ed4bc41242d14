import type { CallEventInput } from '../../calls/call-events.js';
import type { EndReason } from '../../calls/calls.table.js';
import { epochNow } from '../../media/media-engine.js';
import type { CallLatencies } from '../../telephony/call-latency.js';
import { AgentStateReporter, type Responder, type VoiceOut } from './responder.js';

/** What echo mode needs from the call session. */
export interface EchoDeps {
  voice: VoiceOut;
  latencies: CallLatencies;
  /** The agent lets the caller cut it off. */
  interruption: boolean;
  publish(event: CallEventInput): void;
  /** Ends the call (the session closes the record and the socket). */
  end(reason: EndReason): void;
}

// Audio kept from before VAD declares speech: Silero confirms onset after some speech has passed, and a
// busy worker reports it later still. The event's `atMs` says where speech began; this much history lets
// the capture start there even when the event arrives a second late.
const PREROLL_FRAMES = 50;
// Echo mode never replays more than this, whatever the caller does.
const MAX_ECHO_FRAMES = 30 * 50;
const FRAME_MS = 20;

/**
 * The echo agent: plays each caller utterance back, then a mark, so the pipeline (VAD, pacing, barge-in)
 * can be measured without any provider. Same surface as the conversation engine.
 */
export class EchoResponder implements Responder {
  private readonly state: AgentStateReporter;
  // The last PREROLL_FRAMES caller frames and the stream time (ms) each one starts at.
  private readonly preroll: Array<{ atMs: number; frame: Uint8Array }> = [];
  private capture: Uint8Array[] | null = null;
  private framesIn = 0;
  private marksSent = 0;
  // When the worker detected the end of speech the next outbound frame answers (echo latency).
  private answerPendingSince: number | null = null;

  constructor(private readonly deps: EchoDeps) {
    this.state = new AgentStateReporter(deps.publish);
  }

  /** Waits for the caller. */
  start(): void {
    this.state.set('listening');
  }

  /** Keeps the caller's audio: the last second before speech, and the speech itself. */
  onAudio(mulaw: Uint8Array): void {
    const atMs = this.framesIn++ * FRAME_MS;
    if (this.capture) {
      if (this.capture.length < MAX_ECHO_FRAMES) this.capture.push(mulaw);
      return;
    }
    this.preroll.push({ atMs, frame: mulaw });
    if (this.preroll.length > PREROLL_FRAMES) this.preroll.shift();
  }

  /** The caller talks: over an echo still playing, that echo is cleared; the capture starts at the onset. */
  onSpeechStart(atMs: number, detectedAt: number): void {
    const { voice } = this.deps;
    if (this.deps.interruption && voice.playedMs() < voice.queuedMs) {
      voice.clear();
      this.deps.latencies.bargeIn(epochNow() - detectedAt);
      this.state.set('listening');
    }
    // Start at the onset VAD reported, not at the moment its event arrived here.
    this.capture = this.preroll.filter((p) => p.atMs + FRAME_MS > atMs).map((p) => p.frame);
  }

  /** The caller stopped: their utterance, played back, then a mark so the simulator can time it. */
  onSpeechEnd(_atMs: number, detectedAt: number): void {
    const frames = this.capture;
    if (!frames) return;
    this.capture = null;
    this.preroll.length = 0;
    this.answerPendingSince = detectedAt;
    const audio = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let offset = 0;
    for (const f of frames) {
      audio.set(f, offset);
      offset += f.length;
    }
    this.deps.voice.play(audio);
    this.deps.voice.mark(`echo-${++this.marksSent}`);
    this.state.set('speaking');
  }

  /** The last echo's mark came back: it has been heard. */
  onMark(name: string): void {
    if (name === `echo-${this.marksSent}`) this.state.set('listening');
  }

  onDtmf(): void {}

  onAnsweredBy(): void {}

  /** Times the first frame of each echo. */
  onFrameSent(): void {
    if (this.answerPendingSince === null) return;
    this.deps.latencies.echoOverhead(epochNow() - this.answerPendingSince);
    this.answerPendingSince = null;
  }

  /** Echo has nothing to say goodbye with: the call ends at once. */
  async wrapUp(reason: EndReason): Promise<void> {
    this.deps.end(reason);
  }

  close(): void {
    this.capture = null;
    this.preroll.length = 0;
  }

  async settled(): Promise<void> {}
}
