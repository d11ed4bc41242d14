// The seams between the conversation engine and the speech/language providers. Each provider streams,
// stops on its AbortSignal, and reports failures as ProviderError with `retryable` set, so fallback logic
// never guesses. Audio at these seams is what the phone carries: 8 kHz mu-law, so nothing on the main
// thread resamples or transcodes.

/** Options for one live transcription stream (one per call). */
export interface SttOptions {
  /** BCP 47 language tag, e.g. `en-US`. */
  language: string;
  /** Provider model name, e.g. `nova-3`. */
  model: string;
  /** Silence (ms) after which the provider marks a result `speechFinal`. */
  endpointingMs: number;
  /** Aborting closes the stream and ends its iteration. */
  signal: AbortSignal;
}

/** What a transcription stream reports. Times are seconds of audio since the stream began. */
export type SttEvent =
  | { kind: 'interim'; text: string; start: number; end: number }
  /** A final transcript of a span of audio; `speechFinal` when the provider's endpointing saw the speaker stop. */
  | { kind: 'final'; text: string; start: number; end: number; speechFinal: boolean; confidence?: number }
  /** The provider's utterance-end signal: no more words are coming for the current utterance. */
  | { kind: 'utterance_end'; lastWordEnd?: number }
  | { kind: 'speech_started'; at: number };

/** One call's live transcription: push caller audio in, iterate events out. */
export interface SttStream extends AsyncIterable<SttEvent> {
  /** Resolves once the provider connection is open (audio pushed earlier is buffered, not lost). */
  readonly ready: Promise<void>;
  /** One chunk of the caller's 8 kHz mu-law audio. */
  push(mulaw: Uint8Array): void;
  /** Asks the provider to finalize what it has heard so far (Deepgram `Finalize`). */
  flush(): void;
  /** No more audio will come; the provider finishes and the iteration ends. */
  endInput(): void;
  /** Closes now; the iteration ends. */
  close(): void;
  /** Seconds of audio sent to the provider so far (billing). */
  readonly audioSeconds: number;
}

/** A streaming speech-to-text provider. */
export interface SttProvider {
  readonly name: string;
  /**
   * Opens a stream. Iterating it throws ProviderError when the provider fails for good (after its own
   * reconnect attempts).
   */
  stream(options: SttOptions): SttStream;
}

/** A tool call the model asked for; `arguments` is the model's raw JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** One message of a chat, in the provider-neutral shape the engine keeps as history. */
export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string };

/** A function the model may call: name, description and JSON Schema of its arguments. */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** One chat completion request. */
export interface LlmRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ToolSpec[];
  temperature?: number;
  maxTokens?: number;
}

/** What a streaming chat completion yields, in order: text and tool calls, then usage, then done. */
export type LlmDelta =
  | { kind: 'text'; text: string }
  /** A complete tool call (the provider assembles the streamed argument fragments). */
  | { kind: 'tool_call'; call: ToolCall }
  /**
   * Tokens the request used, named by the endpoint (`provider`) and model that answered. `estimated` when the
   * provider reported none (a stream we cut, a server that sends no usage) and we counted them ourselves.
   */
  | { kind: 'usage'; provider: string; model: string; inputTokens: number; outputTokens: number; estimated?: boolean }
  | { kind: 'done'; finishReason: string };

/** A streaming chat model (OpenAI Chat Completions or any compatible server). */
export interface LlmProvider {
  readonly name: string;
  /** Streams one completion; throws ProviderError (before or during the stream) on failure. */
  chat(request: LlmRequest, signal: AbortSignal): AsyncIterable<LlmDelta>;
}

/** Options for synthesizing one piece of text. */
export interface TtsOptions {
  /** Piper voice name or ElevenLabs voice id. */
  voice: string;
  /** Multi-speaker Piper voices. */
  speakerId?: number;
  /** 1 = the voice's natural pace; 2 = twice as fast. */
  speed: number;
  /**
   * What the same reply said just before this text: providers that can (ElevenLabs' `previous_text`)
   * continue its prosody, so a reply cut into a short first phrase and sentences still sounds like one.
   */
  previousText?: string;
  /** Aborting stops synthesis at once and ends the iteration. */
  signal: AbortSignal;
  /**
   * Receives the provider's character timings as they come, each before the audio it describes; providers
   * that have none (Piper) never call it. Asking may change the request (ElevenLabs' with-timestamps stream).
   */
  onTimings?(timings: TtsCharTimings): void;
}

/** When characters of the text sound: ms from the start of its audio, one entry per character, in text order. */
export interface TtsCharTimings {
  chars: string[];
  startsMs: number[];
  endsMs: number[];
}

/** A text-to-speech provider. */
export interface TtsProvider {
  readonly name: string;
  /**
   * Speaks `text` (a sentence or clause), yielding 8 kHz mu-law audio as soon as it exists. Throws
   * ProviderError on failure.
   */
  synthesize(text: string, options: TtsOptions): AsyncIterable<Uint8Array>;
}
