import type { Agent } from '../agents.schemas.js';
import type { SttStream } from '../../media/providers.js';
import type { ConversationProviders } from './providers.js';

interface Warm {
  stream: SttStream;
  controller: AbortController;
  timer: NodeJS.Timeout;
}

/**
 * STT connections opened as soon as a call is known (the webhook or the test-call request), so the
 * provider handshake (a TLS WebSocket, hundreds of ms) is done before the caller says a word. The call
 * session takes its stream when the media socket starts; unclaimed streams close after `ttlMs`.
 */
export class SttPrewarm {
  private readonly warm = new Map<string, Warm>();

  constructor(
    private readonly providers: ConversationProviders,
    private readonly ttlMs = 30_000,
  ) {}

  /** Opens the STT stream for `callId` if the agent holds conversations and STT is configured. */
  open(callId: string, agent: Agent): void {
    if (agent.voice.provider === 'echo' || this.warm.has(callId)) return;
    let provider;
    try {
      provider = this.providers.stt(agent);
    } catch {
      return; // not configured: the session reports it when the call starts
    }
    const controller = new AbortController();
    const stream = provider.stream({ language: agent.language, model: agent.stt.model, endpointingMs: agent.stt.endpointingMs, signal: controller.signal });
    // A stream that fails before anyone takes it must not surface as an unhandled rejection.
    stream.ready.catch(() => {});
    const timer = setTimeout(() => this.drop(callId), this.ttlMs);
    timer.unref();
    this.warm.set(callId, { stream, controller, timer });
  }

  /** Hands the call's open stream over, tied to `callSignal` from now on; null if none was opened. */
  take(callId: string, callSignal: AbortSignal): SttStream | null {
    const w = this.warm.get(callId);
    if (!w) return null;
    this.warm.delete(callId);
    clearTimeout(w.timer);
    if (callSignal.aborted) {
      w.controller.abort(callSignal.reason);
      return null;
    }
    callSignal.addEventListener('abort', () => w.controller.abort(callSignal.reason), { once: true });
    return w.stream;
  }

  /** Streams opened and not yet taken. */
  get size(): number {
    return this.warm.size;
  }

  /** Closes every unclaimed stream. */
  close(): void {
    for (const callId of [...this.warm.keys()]) this.drop(callId);
  }

  private drop(callId: string): void {
    const w = this.warm.get(callId);
    if (!w) return;
    this.warm.delete(callId);
    clearTimeout(w.timer);
    w.controller.abort(new Error('stt prewarm expired'));
  }
}
