import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config.js';
import type { Agent } from '../agents.schemas.js';
import type { MediaChannel } from '../../media/media-engine.js';
import type { SttProvider, TtsOptions, TtsProvider } from '../../media/providers.js';
import { FallbackLlm } from '../../media/llm/fallback-llm.js';
import type { ChatModel } from './conversation-deps.js';

/** Builds each call's providers from the process configuration. */
export interface ConversationProviders {
  /** What is missing for `agent` to hold a conversation (empty when it can). */
  problems(agent: Agent, media: MediaChannel | null): string[];
  stt(agent: Agent): SttProvider;
  llm(agent: Agent, onFallback?: (from: string, to: string, reason: string) => void): ChatModel;
  /** Piper speaks through the call's media worker; ElevenLabs over HTTP. */
  tts(agent: Agent, media: MediaChannel | null): TtsProvider;
}

/**
 * The providers configured by environment (keys and base URLs, see README "Providers and keys"). SDKs
 * load only when configured: the ElevenLabs SDK alone takes about a second to import.
 */
export async function createConversationProviders(config: Config): Promise<ConversationProviders> {
  const { deepgram, openai, elevenlabs } = config.providers;
  const stt = deepgram.apiKey ? new (await import('../../media/stt/deepgram-stt.js')).DeepgramStt({ apiKey: deepgram.apiKey, baseUrl: deepgram.baseUrl }) : null;
  // A self-hosted OpenAI-compatible server (Ollama, vLLM) needs a base URL but often no key.
  const openAi = openai.apiKey || openai.baseUrl ? new (await import('../../media/llm/openai-llm.js')).OpenAiLlm({ apiKey: openai.apiKey, baseUrl: openai.baseUrl, name: llmEndpointName(openai.name, openai.baseUrl) }) : null;
  // Loaded now, not at the first barge-in: parsing the tokenizer's tables would stall every live call.
  const tokens = openAi ? await (await import('../../media/llm/token-count.js')).loadTokenCounter() : undefined;
  const elevenLabs = elevenlabs.apiKey ? new (await import('../../media/tts/elevenlabs-tts.js')).ElevenLabsTts({ apiKey: elevenlabs.apiKey, baseUrl: elevenlabs.baseUrl }) : null;

  return {
    problems(agent, media) {
      const out: string[] = [];
      if (!stt) out.push('speech-to-text needs DEEPGRAM_API_KEY');
      if (!openAi) out.push('the LLM needs OPENAI_API_KEY (or OPENAI_BASE_URL for a self-hosted OpenAI-compatible server)');
      if (agent.voice.provider === 'elevenlabs' && !elevenLabs) out.push('the ElevenLabs voice needs ELEVENLABS_API_KEY');
      if (agent.voice.provider === 'piper' && !media) out.push('Piper needs the media workers');
      if (agent.voice.provider === 'piper' && !existsSync(join(config.voicesDir, `${agent.voice.voiceId}.onnx`))) {
        out.push(`Piper voice ${agent.voice.voiceId} is not installed in ${config.voicesDir}: run "vocelio voices pull ${agent.voice.voiceId}"`);
      }
      return out;
    },
    stt() {
      if (!stt) throw new Error('DEEPGRAM_API_KEY is not set');
      return stt;
    },
    llm(agent, onFallback) {
      if (!openAi) throw new Error('OPENAI_API_KEY / OPENAI_BASE_URL is not set');
      const candidates = [agent.llm.model, ...agent.llm.fallbacks.map((f) => f.model)].map((model) => ({ provider: openAi, model }));
      return new FallbackLlm(candidates, {
        tokens,
        onFallback: onFallback ? (from, to, error) => onFallback(from.model, to.model, error.message) : undefined,
      });
    },
    tts(agent, media) {
      if (agent.voice.provider === 'elevenlabs') {
        if (!elevenLabs) throw new Error('ELEVENLABS_API_KEY is not set');
        return elevenLabs;
      }
      if (!media) throw new Error('Piper needs the media workers');
      return { name: 'piper', synthesize: (text: string, options: TtsOptions) => media.synthesize(text, options) };
    },
  };
}

/**
 * How usage records and errors name the OpenAI-compatible endpoint: the configured name, else `openai` for
 * OpenAI itself and the server's host (`localhost:11434`, `api.groq.com`) for anything else.
 */
export function llmEndpointName(name: string | undefined, baseUrl: string | undefined): string {
  if (name) return name;
  if (!baseUrl) return 'openai';
  const url = new URL(baseUrl);
  return url.hostname === 'api.openai.com' ? 'openai' : url.host;
}
