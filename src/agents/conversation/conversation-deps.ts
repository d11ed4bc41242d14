import type { FastifyBaseLogger } from 'fastify';
import type { Agent } from '../agents.schemas.js';
import type { CallEventInput } from '../../calls/call-events.js';
import type { EndReason } from '../../calls/calls.table.js';
import type { LlmDelta, LlmRequest, SttProvider, TtsProvider } from '../../media/providers.js';
import type { CallLatencies } from '../../telephony/call-latency.js';
import type { VoiceOut } from './responder.js';
import type { ToolRunner } from './tools.js';
import type { TurnStore, UsageSink } from './turn-log.js';

/** A chat model with its ordered fallbacks. */
export interface ChatModel {
  chat(request: Omit<LlmRequest, 'model'>, signal: AbortSignal): AsyncIterable<LlmDelta>;
}

/** Everything one conversation needs; the call session provides it. */
export interface ConversationDeps {
  callId: string;
  organizationId: string;
  agent: Agent;
  /** Per-call values for the prompt's `{{variables}}` (over the agent's defaults). */
  variables: Record<string, string>;
  stt: SttProvider;
  llm: ChatModel;
  tts: TtsProvider;
  tools: ToolRunner;
  turns: TurnStore;
  usage: UsageSink;
  voice: VoiceOut;
  latencies: CallLatencies;
  log: FastifyBaseLogger;
  /** Aborted when the call ends. */
  signal: AbortSignal;
  publish(event: CallEventInput): void;
  /** Ends the call (the session closes the record and the socket). */
  end(reason: EndReason, detail?: string): void;
  /** Hands the live call to another number at the carrier; rejects when the carrier refuses. */
  transfer?(to: string, summary: string | undefined): Promise<void>;
}

/** A caller turn to answer: speech, or keys. */
export interface CallerInput {
  text: string;
  shown: string;
  kind: 'speech' | 'dtmf';
  endOfSpeechAt: number | null;
  sttFinalAt: number | null;
  /** Epoch ms at which the caller's last voiced frame arrived (speech turns; the caller-wait reference). */
  lastVoicedAt?: number | null;
  /** Epoch ms at which the turn was confirmed (the end-of-turn wait ends here). */
  confirmedAt?: number | null;
}
