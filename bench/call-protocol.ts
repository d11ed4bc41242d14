// What the call benchmark's server process, its caller process (bench/call-callers.ts) and its fake
// providers process (bench/conversation-fakes.ts) say to each other over the child-process IPC channels.

/** Echo agents replay each utterance; conversation agents answer through STT, LLM and TTS (the fakes). */
export type CallMode = 'echo' | 'conversation';

/** When conversation callers talk over the agent's reply to provoke a barge-in. */
export interface BargeInPlan {
  /** Every `everyTurns`-th reply is talked over (2: every other reply). */
  everyTurns: number;
  /** The caller's speech starts this long after the reply's first frame arrived. */
  afterMs: number;
}

/** Everything the callers need; the first message the server process sends. */
export interface CallerPlan {
  kind: 'plan';
  mode: CallMode;
  /** Conversation mode only. */
  bargeIn: BargeInPlan;
  /** `ws://127.0.0.1:<port>/twilio/media` */
  url: string;
  /** One single-use stream token per caller, issued by the server process for a call it created. */
  tokens: string[];
  /** Callers start talking at evenly spread offsets over this window, so their 20 ms frames do not align. */
  staggerMs: number;
  /** Talking time measured after the stagger window. */
  durationS: number;
}

/** Server process -> callers. */
export type ToCallers =
  | CallerPlan
  /** The server has read its figures: send `stop` on every stream and report. */
  | { kind: 'hang-up' }
  /** Ctrl-C: stop talking now. */
  | { kind: 'abort' };

/** What the callers measured on their side of the sockets. */
export interface CallerResult {
  mode: CallMode;
  calls: number;
  /** Calls whose socket closed before hang-up (refused token, server error, crashed worker). */
  closedEarly: number;
  /** Media frames the callers sent, all calls, from connect to the end of talking. */
  framesSent: number;
  /** Utterances spoken to the end before the deadline. */
  utterances: number;
  /** Replies played to the end: echo mode, ended by their mark; conversation, their last mark played back. */
  replies: number;
  /** Utterances still without any reply 10 s after they ended (VAD missed them or the server lost them). */
  missedReplies: number;
  /** Complete echo replies that lack more than 100 ms of the utterance's speech at either end (echo mode). */
  shortReplies: number;
  /** Replies whose first frame arrived before the utterance was over (VAD split it): answered twice. */
  splitReplies: number;
  /** `clear` messages received. Echo callers never talk over a reply, so expect 0 there. */
  clears: number;
  /** Conversation mode: replies the caller started talking over. */
  bargeInsAttempted: number;
  /** Of those, the ones the server answered with `clear` before the reply ended. */
  bargeInsCleared: number;
  /** Agent media frames received (echoed frames in echo mode). */
  framesReceived: number;
  /** Frames of the caller's utterance missing between two frames that did arrive (content-aligned; echo mode). */
  droppedFrames: number;
  /** Echoed frames that match no frame the caller sent, or arrive out of order (echo mode). */
  corruptFrames: number;
  /** Frames that arrived after their play-out time (playback starting at the reply's first frame). */
  lateFrames: number;
  /** Inter-arrival gaps over 60 ms inside a reply. */
  gapsOver60Ms: number;
  maxGapMs: number;
  /** Caller-observed turn latency: last speech frame sent -> first reply frame received (includes VAD's end-of-speech silence). */
  turnLatencyMs: number[];
  /** Lateness of the callers' own 20 ms sends (their process is loaded too). */
  sendLagMs: { mean: number; max: number };
  /** The callers' own event-loop delay p99 (ms beyond the 10 ms resolution); arrival times are taken on that loop. */
  eventLoopDelayP99Ms: number;
  /** CPU the caller process used over the talking window, % of one core. */
  cpuPct: number;
  interrupted: boolean;
}

/** Callers -> server process. */
export type FromCallers =
  | { kind: 'connected'; calls: number; connectMs: number }
  /** The stagger window is over: every call is streaming; measuring starts now. */
  | { kind: 'measure-start' }
  | { kind: 'progress'; elapsedS: number; totalS: number; utterances: number; replies: number }
  /** The deadline passed and every caller stopped sending; the sockets are still open. */
  | { kind: 'quiet'; framesSent: number }
  | { kind: 'done'; result: CallerResult }
  | { kind: 'failed'; message: string };

/** The API keys the fake providers accept; the bench server is configured with them. */
export const FAKE_KEYS = { deepgram: 'bench-deepgram-key', openai: 'bench-openai-key', elevenlabs: 'bench-elevenlabs-key' } as const;

/** Server process -> fake providers process (bench/conversation-fakes.ts). */
export type ToFakes =
  /** The measured window starts: the fakes start counting their CPU. */
  | { kind: 'window-start' }
  /** The measured window ended: report what the fakes used during it. */
  | { kind: 'window-end' }
  | { kind: 'close' };

/** What the fake providers did over the measured window. */
export interface FakesWindow {
  /** CPU the fakes' process used, % of one core. */
  cpuPct: number;
  /** Chat completion requests answered. */
  llmRequests: number;
  /** Deepgram `Finalize` messages received (one per caller turn the server closed early). */
  finalizes: number;
}

/** Fake providers process -> server process. */
export type FromFakes =
  /** `elevenlabsUrl` only with a profile whose voice is the fake ElevenLabs. */
  | { kind: 'ready'; deepgramUrl: string; openaiBaseUrl: string; elevenlabsUrl: string | null }
  | { kind: 'window'; window: FakesWindow }
  | { kind: 'failed'; message: string };
