// The server's side of what the caller waited, read back from the call's transcript after a simulated call:
// the simulator measures the wait on the caller's clock, the server knows where the time went.
import type { TurnLatency } from '../calls/calls.table.js';

/** One agent answer's latency as the server recorded it. */
export interface ServerAnswer {
  /** The turn's place in the call's transcript. */
  seq: number;
  latency: TurnLatency;
}

/**
 * The call's agent answers with a recorded caller wait, from `GET /v1/calls/:id`; null when the server
 * could not be asked (the report is complete without them).
 */
export async function fetchServerAnswers(baseUrl: string, apiKey: string, callId: string, timeoutMs = 5000): Promise<ServerAnswer[] | null> {
  try {
    const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/v1/calls/${encodeURIComponent(callId)}`, {
      headers: { authorization: `Bearer ${apiKey}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return null;
    const body = (await res.json()) as { transcript?: Array<{ seq: number; role: string; latency: TurnLatency | null }> };
    return (body.transcript ?? []).flatMap((t) => (t.role === 'assistant' && t.latency?.callerWaitMs !== undefined ? [{ seq: t.seq, latency: t.latency }] : []));
  } catch {
    return null;
  }
}

const ms = (n: number | undefined): string => (n === undefined ? '-' : `${Math.round(n)}`);

/** One line per answer: the caller wait on the server's clock, and the parts it adds up from. */
export function formatServerAnswers(answers: readonly ServerAnswer[]): string[] {
  return answers.map(({ seq, latency: l }) => {
    const stt = l.sttFinalMs ? ` (STT final ${ms(l.sttFinalMs)})` : '';
    return (
      `  answer #${seq}: caller wait ${ms(l.callerWaitMs)} ms = end of turn ${ms(l.endOfTurnMs)}${stt} + LLM first token ${ms(l.llmFirstTokenMs)} ` +
      `+ first chunk ${ms(l.firstChunkMs)} + TTS first byte ${ms(l.ttsFirstByteMs)} + ours ${ms(l.overheadMs)}`
    );
  });
}
