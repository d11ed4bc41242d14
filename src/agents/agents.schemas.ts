import { Type, type Static, type TSchema } from 'typebox';
import { StringEnum, IdString, Timestamp, E164String } from '../shared/schemas.js';

/** Providers an agent may name; the conversation engine implements each. */
export const VOICE_PROVIDERS = ['piper', 'elevenlabs', 'echo'] as const;
export const STT_PROVIDERS = ['deepgram'] as const;
export const LLM_PROVIDERS = ['openai'] as const;
export const BUILTIN_TOOLS = ['end_call', 'transfer_call'] as const;

const ModelName = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._:/@+-]+$' });
const ToolName = Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_-]{0,63}$', description: 'name the LLM calls the tool by' });

export const VoiceSettings = Type.Object(
  {
    provider: StringEnum(VOICE_PROVIDERS, { description: 'piper (local ONNX), elevenlabs, or echo (test mode: repeats the caller)' }),
    voiceId: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._:-]+$', description: 'Piper voice name or ElevenLabs voice id' }),
    speakerId: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000, description: 'Piper multi-speaker voices only' })),
    speed: Type.Number({ minimum: 0.5, maximum: 2, default: 1 }),
  },
  { additionalProperties: false },
);

export const SttSettings = Type.Object(
  {
    provider: StringEnum(STT_PROVIDERS),
    model: Type.String({ ...ModelName, default: 'nova-3' }),
    endpointingMs: Type.Integer({ minimum: 50, maximum: 5000, default: 400, description: 'silence that ends the caller\'s turn when turnDetection.mode is fixed' }),
  },
  { additionalProperties: false },
);

export const TURN_DETECTION_MODES = ['adaptive', 'fixed'] as const;

/** How the engine decides that the caller has finished their turn. */
export const TurnDetectionSettings = Type.Object(
  {
    mode: StringEnum(TURN_DETECTION_MODES, {
      default: 'adaptive',
      description: 'adaptive: the silence that ends a turn depends on how finished the words look (minSilenceMs after a complete sentence, up to maxSilenceMs after "and", "um" or an unfinished clause); fixed: stt.endpointingMs of silence always',
    }),
    minSilenceMs: Type.Integer({ minimum: 100, maximum: 2000, default: 250, description: 'adaptive: silence that ends a turn whose words look finished' }),
    maxSilenceMs: Type.Integer({ minimum: 100, maximum: 5000, default: 900, description: 'adaptive: silence that ends a turn whose words look unfinished; at least minSilenceMs' }),
  },
  { additionalProperties: false },
);

export const LlmModelRef = Type.Object({ provider: StringEnum(LLM_PROVIDERS), model: ModelName }, { additionalProperties: false });

export const LlmSettings = Type.Object(
  {
    provider: StringEnum(LLM_PROVIDERS, { description: 'openai = any OpenAI-compatible Chat Completions endpoint (OPENAI_BASE_URL)' }),
    model: ModelName,
    temperature: Type.Number({ minimum: 0, maximum: 2, default: 0.7 }),
    maxTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 16_384 })),
    fallbacks: Type.Array(LlmModelRef, { maxItems: 5, default: [], description: 'tried in order when the primary fails with a retryable error' }),
  },
  { additionalProperties: false },
);

export const InterruptionSettings = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    minSpeechMs: Type.Integer({ minimum: 0, maximum: 5000, default: 200, description: 'caller speech shorter than this does not interrupt' }),
  },
  { additionalProperties: false },
);

export const VoicemailSettings = Type.Object(
  {
    action: StringEnum(['hangup', 'leave_message'] as const, { default: 'hangup' }),
    message: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
  },
  { additionalProperties: false },
);

/** A place `transfer_call` may send a caller; the LLM picks one by name, never dials a number it made up. */
export const TransferDestination = Type.Object(
  {
    name: Type.String({ pattern: '^[a-zA-Z][a-zA-Z0-9_-]{0,63}$', description: 'what the model calls it, e.g. billing' }),
    number: E164String(),
    description: Type.Optional(Type.String({ maxLength: 500, description: 'when to transfer there' })),
  },
  { additionalProperties: false },
);

export const BuiltinTool = Type.Object(
  {
    type: Type.Literal('builtin'),
    name: StringEnum(BUILTIN_TOOLS),
    destinations: Type.Optional(Type.Array(TransferDestination, { minItems: 1, maxItems: 20, description: 'transfer_call only: where calls may be transferred' })),
  },
  { additionalProperties: false },
);

export const RecordingSettings = Type.Object(
  {
    enabled: Type.Boolean({ default: false, description: 'record both sides of every call (caller and agent on two channels)' }),
    disclosure: Type.String({ maxLength: 500, default: 'This call is recorded.', description: 'said before anything else when recording is on' }),
  },
  { additionalProperties: false },
);

const httpToolFields = {
  type: Type.Literal('http'),
  name: ToolName,
  description: Type.String({ minLength: 1, maxLength: 1000 }),
  url: Type.String({ format: 'uri', maxLength: 2000, description: 'http(s) URL, no credentials in it; must reach a public address unless the operator allows private networks. Arguments are sent as JSON' }),
  method: StringEnum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const, { description: 'default POST' }),
  // additionalProperties: a Record with a key pattern is only `patternProperties`, which lets any other key
  // through with any value.
  headers: Type.Optional(
    Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,100}$' }), Type.String({ maxLength: 2000 }), {
      maxProperties: 20,
      additionalProperties: false,
      description: 'write-only values (e.g. Authorization), encrypted at rest: responses show "[redacted]", and "[redacted]" sent back keeps the stored value',
    }),
  ),
  parameters: Type.Object({}, { additionalProperties: true, description: 'JSON Schema (type object) of the arguments' }),
  timeoutMs: Type.Integer({ minimum: 100, maximum: 30_000, description: 'default 5000' }),
  fillerMessage: Type.Optional(Type.String({ maxLength: 500, description: 'said while a slow call runs' })),
};

/** An HTTP tool as stored and returned: every field resolved. */
export const HttpTool = Type.Object(httpToolFields, { additionalProperties: false });

/** An HTTP tool as written: `method` and `timeoutMs` may be left out. */
export const HttpToolInput = Type.Object(
  { ...httpToolFields, method: Type.Optional(httpToolFields.method), timeoutMs: Type.Optional(httpToolFields.timeoutMs) },
  { additionalProperties: false },
);

// oneOf + discriminator: Ajv checks only the branch the `type` names, so errors speak about that branch.
const toolUnion = <T extends TSchema[]>(branches: [...T]) =>
  Type.Unsafe<Static<T[number]>>({ type: 'object', oneOf: branches, discriminator: { propertyName: 'type' }, required: ['type'] });

export const AgentTool = toolUnion([BuiltinTool, HttpTool]);
export const AgentToolInput = toolUnion([BuiltinTool, HttpToolInput]);

const ToolsInput = Type.Array(AgentToolInput, { maxItems: 32, description: 'built-in tools by name and HTTP tools' });

const agentFields = {
  name: Type.String({ minLength: 1, maxLength: 120 }),
  systemPrompt: Type.String({ maxLength: 50_000, default: '', description: 'may contain {{variables}} filled per call' }),
  firstMessage: Type.String({ maxLength: 2000, default: '', description: 'spoken when the call connects; empty waits for the caller' }),
  language: Type.String({ pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$', default: 'en-US', description: 'BCP 47 tag' }),
  variables: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Type.String({ maxLength: 2000 }), {
    default: {},
    maxProperties: 100,
    additionalProperties: false,
    description: 'default values for {{variables}}; a call may override them',
  }),
  voice: VoiceSettings,
  stt: SttSettings,
  turnDetection: TurnDetectionSettings,
  llm: LlmSettings,
  interruption: InterruptionSettings,
  maxDurationSeconds: Type.Integer({ minimum: 10, maximum: 14_400, default: 1800 }),
  silenceTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 600, default: 15 }),
  voicemail: VoicemailSettings,
  recording: RecordingSettings,
  tools: Type.Array(AgentTool, { maxItems: 32, default: [] }),
};

/** Body of `POST /v1/agents`; everything but the name has a default. */
export const AgentCreate = Type.Object(
  {
    name: agentFields.name,
    systemPrompt: Type.Optional(agentFields.systemPrompt),
    firstMessage: Type.Optional(agentFields.firstMessage),
    language: Type.Optional(agentFields.language),
    variables: Type.Optional(agentFields.variables),
    voice: Type.Optional(agentFields.voice),
    stt: Type.Optional(agentFields.stt),
    turnDetection: Type.Optional(agentFields.turnDetection),
    llm: Type.Optional(agentFields.llm),
    interruption: Type.Optional(agentFields.interruption),
    maxDurationSeconds: Type.Optional(agentFields.maxDurationSeconds),
    silenceTimeoutSeconds: Type.Optional(agentFields.silenceTimeoutSeconds),
    voicemail: Type.Optional(agentFields.voicemail),
    recording: Type.Optional(agentFields.recording),
    tools: Type.Optional(ToolsInput),
  },
  { additionalProperties: false },
);
export type AgentCreate = Static<typeof AgentCreate>;

// A PATCH must not fill defaults into fields the client left out: that would overwrite them.
const noDefault = <T extends TSchema>(schema: T): T => {
  const { default: _dropped, ...rest } = schema as T & { default?: unknown };
  return rest as T;
};

/** Body of `PATCH /v1/agents/:id`: any subset of the create fields; a nested object replaces the old one whole. */
export const AgentUpdate = Type.Object(
  {
    name: Type.Optional(agentFields.name),
    systemPrompt: Type.Optional(noDefault(agentFields.systemPrompt)),
    firstMessage: Type.Optional(noDefault(agentFields.firstMessage)),
    language: Type.Optional(noDefault(agentFields.language)),
    variables: Type.Optional(noDefault(agentFields.variables)),
    voice: Type.Optional(agentFields.voice),
    stt: Type.Optional(agentFields.stt),
    turnDetection: Type.Optional(agentFields.turnDetection),
    llm: Type.Optional(agentFields.llm),
    interruption: Type.Optional(agentFields.interruption),
    maxDurationSeconds: Type.Optional(noDefault(agentFields.maxDurationSeconds)),
    silenceTimeoutSeconds: Type.Optional(noDefault(agentFields.silenceTimeoutSeconds)),
    voicemail: Type.Optional(agentFields.voicemail),
    recording: Type.Optional(agentFields.recording),
    tools: Type.Optional(ToolsInput),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type AgentUpdate = Static<typeof AgentUpdate>;

/** An agent as the API returns it. */
export const Agent = Type.Object(
  {
    id: IdString('agt'),
    object: Type.Literal('agent'),
    ...agentFields,
    promptVariables: Type.Array(Type.String(), { description: 'the {{variables}} the prompt and first message use' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
);
export type Agent = Static<typeof Agent>;

export type VoiceSettings = Static<typeof VoiceSettings>;
export type SttSettings = Static<typeof SttSettings>;
export type TurnDetectionSettings = Static<typeof TurnDetectionSettings>;
export type LlmSettings = Static<typeof LlmSettings>;
export type InterruptionSettings = Static<typeof InterruptionSettings>;
export type VoicemailSettings = Static<typeof VoicemailSettings>;
export type RecordingSettings = Static<typeof RecordingSettings>;
export type TransferDestination = Static<typeof TransferDestination>;
export type AgentTool = Static<typeof AgentTool>;
export type HttpTool = Static<typeof HttpTool>;
export type AgentToolInput = Static<typeof AgentToolInput>;
