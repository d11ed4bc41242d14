// A media worker: per-call Silero VAD on the caller's audio and Piper TTS for the same calls. CPU-heavy
// work lives here so the main thread only moves bytes. `media-worker-main.ts` runs it on a worker thread's
// parent port; taking the port as a parameter lets a test entry wrap it without hooks in this file.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mulawToPcm16 } from '../audio/mulaw.js';
import { loadSileroModel } from '../vad/silero-model.js';
import { SileroVadStream } from '../vad/silero-vad.js';
import type { FromWorker, MediaWorkerData, ToWorker } from './protocol.js';
import { epochNow } from '../media-engine.js';
import { PiperSynthesizer, type PiperStats } from '../tts/piper/piper-synth.js';

/** The worker's side of its channel to the pool (a thread's `parentPort` satisfies it). */
export interface MediaWorkerPort {
  on(event: 'message', listener: (message: ToWorker) => void): void;
  postMessage(message: FromWorker, transfer?: ArrayBuffer[]): void;
}

/** Loads the VAD model, then serves `port` until the thread exits; sends `ready` once it listens. */
export async function runMediaWorker(port: MediaWorkerPort, { voicesDir }: MediaWorkerData): Promise<void> {
  const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const streams = new Map<string, SileroVadStream>();
  const pcm = new Int16Array(160);
  let vadTimeMs = 0;
  let vadCount = 0;

  // Created on the first TTS request: a worker that only runs VAD loads no voice.
  let piper: PiperSynthesizer | undefined;
  const ttsRequests = new Map<number, { callId: string; abort: AbortController }>();
  let ttsSynthMs = 0;
  let ttsAudioMs = 0;

  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  setInterval(() => {
    // The histogram's samples include its own 10 ms resolution; report only the delay beyond it.
    const lagP99Ms = Math.max(0, lag.percentile(99) / 1e6 - 10);
    lag.reset();
    send({ kind: 'stats', lagP99Ms, vadMeanMs: vadCount ? vadTimeMs / vadCount : 0, calls: streams.size, ttsSynthMs, ttsAudioMs });
    vadTimeMs = 0;
    vadCount = 0;
    ttsSynthMs = 0;
    ttsAudioMs = 0;
  }, 1000).unref();

  async function onFrame(callId: string, mulaw: Uint8Array): Promise<void> {
    const stream = streams.get(callId);
    if (!stream) return;
    const samples = mulaw.length === pcm.length ? mulawToPcm16(mulaw, pcm) : mulawToPcm16(mulaw);
    const t0 = performance.now();
    const events = await stream.push(samples);
    vadTimeMs += performance.now() - t0;
    vadCount++;
    if (events.length === 0) return;
    const detectedAt = epochNow();
    for (const event of events) send({ kind: 'event', callId, event: { ...event, detectedAt } });
  }

  async function onTts(m: Extract<ToWorker, { kind: 'tts' }>): Promise<void> {
    const abort = new AbortController();
    ttsRequests.set(m.requestId, { callId: m.callId, abort });
    const stats: PiperStats = { synthMs: 0, audioMs: 0, runs: 0 };
    let counted = { synthMs: 0, audioMs: 0 };
    // Adds what this request did since the last call to the interval's totals, so stats stay per interval.
    const account = () => {
      ttsSynthMs += stats.synthMs - counted.synthMs;
      ttsAudioMs += stats.audioMs - counted.audioMs;
      counted = { synthMs: stats.synthMs, audioMs: stats.audioMs };
    };
    try {
      if (!voicesDir) throw new Error('no Piper voices directory is configured (voicesDir)');
      piper ??= new PiperSynthesizer({ voicesDir, onLog: (message) => send({ kind: 'log', message }) });
      const options = { speed: m.speed, signal: abort.signal, ...(m.speakerId === undefined ? {} : { speakerId: m.speakerId }) };
      for await (const mulaw of piper.synthesize(m.text, m.voice, options, stats)) {
        account();
        if (abort.signal.aborted) break;
        send({ kind: 'tts_audio', requestId: m.requestId, mulaw }, [mulaw.buffer as ArrayBuffer]);
      }
      if (!abort.signal.aborted) send({ kind: 'tts_end', requestId: m.requestId, audioMs: stats.audioMs, synthMs: stats.synthMs });
    } catch (err) {
      if (!abort.signal.aborted) send({ kind: 'tts_error', requestId: m.requestId, detail: (err as Error).message });
    } finally {
      account();
      ttsRequests.delete(m.requestId);
    }
  }

  const onMessage = (m: ToWorker): void => {
    switch (m.kind) {
      case 'open':
        streams.set(m.callId, new SileroVadStream(model, { sampleRate: 8000, ...definedOnly(m.vad) }));
        break;
      case 'frame':
        onFrame(m.callId, m.mulaw).catch((err: unknown) => {
          streams.delete(m.callId);
          send({ kind: 'call_error', callId: m.callId, detail: (err as Error).message });
        });
        break;
      case 'close':
        streams.delete(m.callId);
        for (const request of ttsRequests.values()) if (request.callId === m.callId) request.abort.abort();
        break;
      case 'tts':
        void onTts(m);
        break;
      case 'tts_cancel':
        ttsRequests.get(m.requestId)?.abort.abort();
        break;
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  };

  // Listen only once the model is loaded: messages posted before then wait in the port's queue.
  const model = await loadSileroModel();
  port.on('message', onMessage);
  send({ kind: 'ready' });
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
