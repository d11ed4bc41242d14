import type { MediaEvent, VadOptions } from '../media-engine.js';

/** What the main thread hands a media worker at start (`workerData`). */
export interface MediaWorkerData {
  /** Directory of Piper voices (`<name>.onnx` + `<name>.onnx.json`); without it, TTS requests fail. */
  voicesDir?: string;
}

/** Main thread -> media worker. */
export type ToWorker =
  | { kind: 'open'; callId: string; vad: VadOptions }
  | { kind: 'frame'; callId: string; mulaw: Uint8Array }
  | { kind: 'close'; callId: string }
  /** Speak `text` with Piper voice `voice` for call `callId`; answered by tts_audio..., then tts_end or tts_error. */
  | { kind: 'tts'; callId: string; requestId: number; text: string; voice: string; speakerId?: number; speed: number }
  /** Drop request `requestId`: no more tts_audio is sent for it, and no tts_end. */
  | { kind: 'tts_cancel'; requestId: number };

/** Media worker -> main thread. */
export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'event'; callId: string; event: Exclude<MediaEvent, { kind: 'failed' }> }
  | { kind: 'call_error'; callId: string; detail: string }
  /** A piece of a request's speech, 8 kHz mu-law; its buffer is transferred. */
  | { kind: 'tts_audio'; requestId: number; mulaw: Uint8Array }
  /** The request is complete: how much audio it made and how long synthesis took inside the worker. */
  | { kind: 'tts_end'; requestId: number; audioMs: number; synthMs: number }
  /** The request failed for good (voice missing, bad config, inference error). */
  | { kind: 'tts_error'; requestId: number; detail: string }
  /** Something the operator should see (e.g. phonemes a voice cannot say); the pool passes it to its onLog. */
  | { kind: 'log'; message: string }
  /**
   * Event-loop lag of the worker over the last report interval, how long VAD took per window, and the TTS
   * synthesis time and audio produced in the interval (for the real-time factor).
   */
  | { kind: 'stats'; lagP99Ms: number; vadMeanMs: number; calls: number; ttsSynthMs: number; ttsAudioMs: number };
