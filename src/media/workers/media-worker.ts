// A media worker thread: per-call Silero VAD on the caller's audio. CPU-heavy work lives here so the
// main thread only moves bytes.
import { parentPort } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mulawToPcm16 } from '../audio/mulaw.js';
import { loadSileroModel, type SileroModel } from '../vad/silero-model.js';
import { SileroVadStream } from '../vad/silero-vad.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { epochNow } from '../media-engine.js';

const port = parentPort;
if (!port) throw new Error('media-worker must run in a worker thread');

const send = (m: FromWorker) => port.postMessage(m);
const streams = new Map<string, SileroVadStream>();
const pcm = new Int16Array(160);
let vadTimeMs = 0;
let vadCount = 0;

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
setInterval(() => {
  // The histogram's samples include its own 10 ms resolution; report only the delay beyond it.
  const lagP99Ms = Math.max(0, lag.percentile(99) / 1e6 - 10);
  lag.reset();
  send({ kind: 'stats', lagP99Ms, vadMeanMs: vadCount ? vadTimeMs / vadCount : 0, calls: streams.size });
  vadTimeMs = 0;
  vadCount = 0;
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

function onMessage(m: ToWorker): void {
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
      break;
    case 'stall': {
      const until = Date.now() + m.forMs;
      const block = () => {
        const end = Date.now() + m.ms;
        while (Date.now() < end) {
          // busy on purpose: this is what a lagging worker looks like
        }
        if (Date.now() < until) setTimeout(block, 100);
      };
      block();
      break;
    }
    case 'crash':
      setImmediate(() => {
        throw new Error('crash requested');
      });
      break;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// Listen only once the model is loaded: messages posted before then wait in the port's queue.
const model: SileroModel = await loadSileroModel();
port.on('message', onMessage);
send({ kind: 'ready' });
