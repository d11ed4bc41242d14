import type { CallEventInput } from '../../calls/call-events.js';
import type { EndReason } from '../../calls/calls.table.js';
import type { SttStream } from '../../media/providers.js';

/** The agent's voice on its way to the caller (the call session's paced outbound queue). */
export interface VoiceOut {
  /** Queues 8 kHz mu-law audio. */
  play(mulaw: Uint8Array): void;
  /** Queues a mark after the audio queued so far. */
  mark(name: string): void;
  /** Drops unsent audio and tells Twilio to drop what it buffered. */
  clear(): void;
  /** Where on the caller's timeline (ms) the next queued audio will play. */
  readonly queuedMs: number;
  /** How much of that timeline (ms) the caller has heard by now. */
  playedMs(): number;
}

/** What the agent is doing, as screens show it (`call.agent_state`). */
export type AgentState = 'listening' | 'thinking' | 'speaking';

/** Answering-machine detection's verdict on an outbound call. */
export type AnsweredBy = 'human' | 'machine' | 'fax' | 'unknown';

/** How a responder begins. */
export interface StartOptions {
  /** An STT stream opened when the call became known. */
  prewarmed?: SttStream | null;
  /** Outbound call with answering-machine detection: say nothing until its verdict (or `amdWaitMs`). */
  awaitAnsweredBy?: boolean;
  amdWaitMs?: number;
}

/**
 * Whatever answers the caller: the conversation engine, or echo. The call session hands it every event of
 * the line and nothing else; the responder alone decides what to say and when the caller cuts it off.
 */
export interface Responder {
  /** Begins: greets the caller, or waits for them. */
  start(options?: StartOptions): void;
  /** One 20 ms frame of the caller's audio (a copy the responder may keep). */
  onAudio(mulaw: Uint8Array): void;
  /** VAD: the caller started talking at stream time `atMs` (after the agent's minimum speech time). */
  onSpeechStart(atMs: number, detectedAt: number): void;
  /** VAD: the caller stopped talking at stream time `atMs`. */
  onSpeechEnd(atMs: number, detectedAt: number): void;
  /** VAD, inside speech: the model hears a pause from `atMs` (`quiet`), or the voice again. */
  onSpeechQuiet?(atMs: number, quiet: boolean): void;
  /** Twilio echoed a mark: the audio before it was played. */
  onMark(name: string): void;
  /** A key the caller pressed. */
  onDtmf(digit: string): void;
  /** Answering-machine detection's verdict arrived (possibly on another node). */
  onAnsweredBy(answeredBy: AnsweredBy): void;
  /** An audio frame went out to Twilio (times the first frame of an answer). */
  onFrameSent(): void;
  /** Ends the call with `reason`, politely when the responder can speak (max duration). */
  wrapUp(reason: EndReason): Promise<void>;
  /** Stops everything (the call ended). */
  close(): void;
  /** Resolves when every record the responder writes has been written (shutdown, tests). */
  settled(): Promise<void>;
}

/** Publishes `call.agent_state` on each change of state, never the same state twice in a row. */
export class AgentStateReporter {
  private state: AgentState | null = null;

  constructor(private readonly publish: (event: CallEventInput) => void) {}

  /** The last state published (null before the first). */
  get current(): AgentState | null {
    return this.state;
  }

  /** Moves to `state`, publishing it if it changed. */
  set(state: AgentState): void {
    if (state === this.state) return;
    this.state = state;
    this.publish({ type: 'call.agent_state', state });
  }
}
